gsqhw_product.v
gsqhw_align_fixed.v
gsqhw_sat_fixed.v
gsqhw_addend_fixed.v
gsqhw_acc_fixed.v
gsqhw_pe.v

gsqhw_product.v
gsqhw_addend_fp32.v
gsqhw_acc_fp32.v
gsqhw_pe.v

gsqhw_product.v
gsqhw_addend_fp32.v
gsqhw_acc_fp32.v
gsqhw_pe.v
gsqhw_delay.v
gsqhw_delay_clear.v
gsqhw_array.v

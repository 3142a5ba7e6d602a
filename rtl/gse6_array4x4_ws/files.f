gsqhw_product.v
gsqhw_addend_fixed.v
gsqhw_acc_fixed.v
gsqhw_pe_ws.v
gsqhw_group_acc.v
gsqhw_delay.v
gsqhw_delay_clear.v
gsqhw_array.v

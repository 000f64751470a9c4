# Sources of src/gemm (none yet).

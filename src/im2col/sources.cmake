# Sources of src/im2col (none yet).

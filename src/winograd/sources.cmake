# Sources of src/winograd (none yet).

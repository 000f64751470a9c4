# Sources of src/fft (none yet).

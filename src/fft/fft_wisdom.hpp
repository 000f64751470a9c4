// FFTW's own wisdom (the plans FFTW_MEASURE found), saved and loaded beside fastconv's wisdom.
#pragma once

#include <string>

namespace fastconv::detail {

// FFTW's accumulated single-precision wisdom as text, in FFTW's own format (an empty block when it has
// none); fft_import_wisdom takes it back.
std::string fft_export_wisdom();
// Adds FFTW wisdom from text made by fft_export_wisdom; throws fastconv::Error when FFTW rejects it
// (an empty string included). Later plans of those sizes, Estimate ones too, use it.
void fft_import_wisdom(const std::string& text);

}  // namespace fastconv::detail

// Errors raised by the data layer. Every message names the file (and dataset or index) involved,
// so the launcher can print it as is.
#pragma once

#include <stdexcept>
#include <string>

namespace distgan::data {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace distgan::data

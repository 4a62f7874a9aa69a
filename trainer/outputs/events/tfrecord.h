// TFRecord framing, the container of TensorBoard event files: each record is
//   uint64 length (little endian) | uint32 masked crc32c of those 8 bytes | data | uint32 masked crc32c of data
// where crc32c is CRC-32C (Castagnoli, the iSCSI polynomial) and the mask rotates it right by 15
// bits and adds a constant (a CRC of bytes that contain CRCs is otherwise prone to collisions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace distgan::events {

// CRC-32C of `data`, continuing from `crc` (0 for a fresh checksum): crc32c("123456789") is 0xE3069283.
uint32_t crc32c(std::string_view data, uint32_t crc = 0);

constexpr uint32_t kCrcMaskDelta = 0xa282ead8u;  // TensorFlow's (and LevelDB's) mask constant

inline uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta; }
inline uint32_t unmask_crc(uint32_t masked) {
  const uint32_t rotated = masked - kCrcMaskDelta;
  return (rotated >> 17) | (rotated << 15);
}

// `data` framed as one TFRecord (16 bytes longer).
std::string tfrecord(std::string_view data);

}  // namespace distgan::events

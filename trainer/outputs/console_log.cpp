#include "trainer/outputs/console_log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <stdexcept>

namespace distgan {

namespace {

std::atomic<int> current_level{static_cast<int>(LogLevel::kInfo)};

void write(std::FILE* stream, const char* format, va_list args) {
  std::vfprintf(stream, format, args);
  std::fflush(stream);
}

}  // namespace

LogLevel parse_log_level(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  throw std::invalid_argument("logging.level: '" + name + "' is not one of debug, info, warn, error");
}

void set_log_level(LogLevel level) { current_level = static_cast<int>(level); }

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= current_level; }

void log_info(const char* format, ...) {
  if (!log_enabled(LogLevel::kInfo)) return;
  va_list args;
  va_start(args, format);
  write(stdout, format, args);
  va_end(args);
}

void log_warning(const char* format, ...) {
  if (!log_enabled(LogLevel::kWarn)) return;
  va_list args;
  va_start(args, format);
  write(stderr, format, args);
  va_end(args);
}

}  // namespace distgan

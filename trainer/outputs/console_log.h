// The console lines of a run, filtered by logging.level: info (progress: the start line, metrics
// lines, checkpoints written, evaluations), warning (skipped updates, damaged checkpoints passed
// over, TensorBoard problems). Errors are not filtered: they go through exceptions to the launcher,
// or straight to stderr where training stops. debug shows everything info does.
// The level is process-wide: a run sets it once at its start (trainer/run/run_setup.cpp).
#pragma once

#include <string>

namespace distgan {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug", "info", "warn" or "error" (the schema has validated it); throws std::invalid_argument otherwise.
LogLevel parse_log_level(const std::string& name);
void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

// printf-style; written and flushed when the level allows: info to stdout, warnings to stderr.
void log_info(const char* format, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace distgan

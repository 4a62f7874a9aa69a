#include "trainer/run/fault_plan.h"

#include <charconv>
#include <cstdlib>

#include "trainer/config/config.h"

namespace distgan {

namespace {

constexpr int64_t kMaxStep = int64_t{1} << 53;

// A whole decimal step number in [1, kMaxStep]; ConfigError otherwise.
int64_t parse_step(const std::string& text, const char* variable, const std::string& value) {
  int64_t step = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), step);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || step < 1 || step > kMaxStep)
    throw ConfigError(std::string(variable) + "='" + value + "': '" + text +
                      "' is not a step number (an integer >= 1; a list is comma-separated, e.g. 6,7)");
  return step;
}

}  // namespace

FaultPlan parse_fault_plan(const std::function<const char*(const char*)>& raw_lookup) {
  // An empty variable counts as unset (scripts clear a fault with VAR= ).
  const auto lookup = [&](const char* name) -> const char* {
    const char* value = raw_lookup(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
  };
  FaultPlan plan;
  if (const char* list = lookup(kFaultNonfiniteStepsVariable)) {
    const std::string value(list);
    size_t begin = 0;
    for (;;) {
      const size_t comma = value.find(',', begin);
      const std::string item = value.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
      plan.nonfinite_steps.insert(parse_step(item, kFaultNonfiniteStepsVariable, value));
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
  }
  if (const char* step = lookup(kFaultPerturbStepVariable))
    plan.perturb_step = parse_step(step, kFaultPerturbStepVariable, step);
  if (const char* step = lookup(kFaultSignalStepVariable))
    plan.signal_step = parse_step(step, kFaultSignalStepVariable, step);
  if (const char* watchdog = lookup(kWatchdogVariable)) {
    const std::string v(watchdog);
    if (v != "on" && v != "off")
      throw ConfigError(std::string(kWatchdogVariable) + "='" + v + "': expected on or off");
    plan.watchdog = v == "on";
  }
  return plan;
}

FaultPlan fault_plan_from_environment() {
  return parse_fault_plan([](const char* name) { return std::getenv(name); });
}

}  // namespace distgan

// FaultPlan: the test seams parsed once from the environment; bad values name the variable.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "trainer/config/config.h"
#include "trainer/run/fault_plan.h"

namespace distgan {
namespace {

FaultPlan parse(const std::map<std::string, std::string>& env) {
  return parse_fault_plan([&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& env) {
  try {
    parse(env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(FaultPlan, NothingSetInjectsNothingAndKeepsTheWatchdog) {
  const FaultPlan plan = parse({});
  EXPECT_TRUE(plan.nonfinite_steps.empty());
  EXPECT_EQ(plan.perturb_step, 0);
  EXPECT_EQ(plan.signal_step, 0);
  EXPECT_TRUE(plan.watchdog);
  for (int64_t step = 1; step < 20; ++step) {
    EXPECT_FALSE(plan.poisons_batch(step, 1, 2));
    EXPECT_FALSE(plan.perturbs_weight(step, 1, 2));
    EXPECT_FALSE(plan.signals(step, 1, 2));
  }
}

TEST(FaultPlan, ParsesStepListsAndActsOnTheLastRankOnly) {
  const FaultPlan plan = parse({{"DISTGAN_FAULT_NONFINITE_STEPS", "6,7,12"}, {"DISTGAN_FAULT_PERTURB_STEP", "9"},
                                {"DISTGAN_FAULT_SIGNAL_STEP", "5"}, {"DISTGAN_WATCHDOG", "off"}});
  EXPECT_EQ(plan.nonfinite_steps, (std::set<int64_t>{6, 7, 12}));
  EXPECT_EQ(plan.perturb_step, 9);
  EXPECT_FALSE(plan.watchdog);
  EXPECT_TRUE(plan.poisons_batch(7, 2, 3));
  EXPECT_FALSE(plan.poisons_batch(7, 1, 3));  // not the last rank
  EXPECT_FALSE(plan.poisons_batch(8, 2, 3));
  EXPECT_TRUE(plan.perturbs_weight(9, 0, 1));
  EXPECT_FALSE(plan.perturbs_weight(9, 0, 2));
  EXPECT_FALSE(plan.perturbs_weight(10, 1, 2));
  EXPECT_TRUE(plan.signals(5, 1, 2));
  EXPECT_FALSE(plan.signals(5, 0, 2));
  EXPECT_FALSE(plan.signals(6, 1, 2));
  EXPECT_TRUE(parse({{"DISTGAN_WATCHDOG", "on"}}).watchdog);
}

TEST(FaultPlan, AnEmptyVariableCountsAsUnset) {  // scripts clear a fault with VAR=
  const FaultPlan plan = parse({{"DISTGAN_FAULT_NONFINITE_STEPS", ""}, {"DISTGAN_FAULT_PERTURB_STEP", ""},
                                {"DISTGAN_WATCHDOG", ""}});
  EXPECT_TRUE(plan.nonfinite_steps.empty());
  EXPECT_EQ(plan.perturb_step, 0);
  EXPECT_TRUE(plan.watchdog);
}

TEST(FaultPlan, BadValuesAreErrorsNamingTheVariable) {
  EXPECT_EQ(error_of({{"DISTGAN_FAULT_NONFINITE_STEPS", "6,x"}}),
            "DISTGAN_FAULT_NONFINITE_STEPS='6,x': 'x' is not a step number (an integer >= 1; a list is "
            "comma-separated, e.g. 6,7)");
  EXPECT_EQ(error_of({{"DISTGAN_FAULT_NONFINITE_STEPS", "6,"}}),
            "DISTGAN_FAULT_NONFINITE_STEPS='6,': '' is not a step number (an integer >= 1; a list is "
            "comma-separated, e.g. 6,7)");
  EXPECT_EQ(error_of({{"DISTGAN_FAULT_PERTURB_STEP", "0"}}),
            "DISTGAN_FAULT_PERTURB_STEP='0': '0' is not a step number (an integer >= 1; a list is "
            "comma-separated, e.g. 6,7)");
  EXPECT_EQ(error_of({{"DISTGAN_FAULT_PERTURB_STEP", "7 "}}).substr(0, 32), "DISTGAN_FAULT_PERTURB_STEP='7 ':");
  EXPECT_EQ(error_of({{"DISTGAN_FAULT_SIGNAL_STEP", "x"}}).substr(0, 30), "DISTGAN_FAULT_SIGNAL_STEP='x':");
  EXPECT_EQ(error_of({{"DISTGAN_WATCHDOG", "no"}}), "DISTGAN_WATCHDOG='no': expected on or off");
}

}  // namespace
}  // namespace distgan

// The test seams of a training run, read from the environment once, at start-up, by the launcher
// (never in the middle of a step): faults the end-to-end tests inject, and the benchmark switch that
// turns the collective watchdog off. A bad value is a ConfigError naming the variable.
//   DISTGAN_FAULT_NONFINITE_STEPS=a,b,...  the last rank's real batch becomes NaN at these steps
//                                          (exercises the non-finite policy)
//   DISTGAN_FAULT_PERTURB_STEP=n           the last rank changes one D weight after step n
//                                          (exercises the replica check)
//   DISTGAN_FAULT_SIGNAL_STEP=n            the last rank sends itself SIGTERM after step n
//                                          (exercises the agreed preemption stop)
//   DISTGAN_WATCHDOG=on|off                off: collectives block in MPI_Wait without a deadline
//                                          (bench/watchdog.sh measures what the deadline costs)
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>

namespace distgan {

inline constexpr const char* kFaultNonfiniteStepsVariable = "DISTGAN_FAULT_NONFINITE_STEPS";
inline constexpr const char* kFaultPerturbStepVariable = "DISTGAN_FAULT_PERTURB_STEP";
inline constexpr const char* kFaultSignalStepVariable = "DISTGAN_FAULT_SIGNAL_STEP";
inline constexpr const char* kWatchdogVariable = "DISTGAN_WATCHDOG";

struct FaultPlan {
  std::set<int64_t> nonfinite_steps;  // steps (>= 1) whose batch the last rank poisons
  int64_t perturb_step = 0;           // 0: never
  int64_t signal_step = 0;            // 0: never
  bool watchdog = true;               // the collective deadline (cluster.collective_timeout_s)

  // Whether `rank` of `world_size` poisons its batch / perturbs a weight / signals itself at
  // `step`: always the last rank.
  bool poisons_batch(int64_t step, int rank, int world_size) const {
    return rank == world_size - 1 && nonfinite_steps.count(step) != 0;
  }
  bool perturbs_weight(int64_t step, int rank, int world_size) const {
    return rank == world_size - 1 && perturb_step > 0 && step == perturb_step;
  }
  bool signals(int64_t step, int rank, int world_size) const {
    return rank == world_size - 1 && signal_step > 0 && step == signal_step;
  }
};

// The plan from the variables `lookup` returns (nullptr or "": unset). Throws ConfigError naming the
// variable and what was expected for a malformed value.
FaultPlan parse_fault_plan(const std::function<const char*(const char*)>& lookup);

// parse_fault_plan over this process's environment.
FaultPlan fault_plan_from_environment();

}  // namespace distgan

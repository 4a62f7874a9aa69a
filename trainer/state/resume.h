// Choosing and vetting the checkpoint a run resumes from (rank 0's part of `--resume`).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "trainer/state/checkpoint.h"
#include "trainer/state/tensor_file.h"
#include "trainer/config/config.h"

namespace distgan {

// The checkpoint a run resumes from, opened and verified.
struct ResumeSource {
  std::unique_ptr<TensorFileReader> reader;
  CheckpointInfo info;
};

// Opens the checkpoint for `request`: a file path, or "auto" (the newest valid checkpoint in the run
// directory; damaged ones are reported on stderr and skipped). Returns an empty source when `auto`
// finds no checkpoint at all. Throws data::DataError when the file is unusable or every checkpoint
// of the directory is damaged.
ResumeSource open_resume_source(const std::string& request, const std::string& run_dir);

// Throws ConfigError listing every key that differs and may not (e.g. "model.ch: checkpoint 64,
// this run 32"); returns the allowed changes to log.
std::vector<std::string> check_resume_config(const CheckpointInfo& info, const Config& current,
                                             const std::vector<int64_t>& sample_shape, int64_t dataset_size);

// A fresh run (no --resume) in a run directory that already has checkpoints would mix two runs:
// throws ConfigError saying how to resume or where else to go.
void refuse_fresh_start_over_checkpoints(const std::string& run_dir);

// Renames checkpoints of `run_dir` newer than `step` (a later point of an abandoned timeline, when a
// run resumes from an older file) to "<name>.abandoned", so `--resume auto` never picks them.
// Returns the renamed paths.
std::vector<std::string> set_aside_newer_checkpoints(const std::string& run_dir, int64_t step);

}  // namespace distgan

// The schema of the configuration: one entry per key with its description, and type-specific
// functions that set a key from a YAML node (validating type and range) and print its value.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>
#include <vector>

#include "trainer/config/config.h"

namespace distgan {

struct ConfigKey {
  std::string section;      // "training"
  std::string name;         // "lr_d"
  std::string description;  // one line, shown by --print-config
  // Sets the key from `node`; returns "" on success or what was expected ("a number in (0, 1]").
  std::function<std::string(Config&, const YAML::Node&)> set;
  // The current value as YAML text.
  std::function<std::string(const Config&)> get;
  // A free-form string: `--set` takes its text literally unless quoted (paths may hold ': ' or '#').
  bool literal_string = false;
  // Whether a resumed run may set it to another value than the checkpoint's config has.
  bool may_change_on_resume = false;

  std::string path() const { return section + "." + name; }
};

const std::vector<ConfigKey>& config_schema();
const std::vector<std::string>& config_sections();

// The key at "section.name", or nullptr.
const ConfigKey* find_config_key(const std::string& path);

}  // namespace distgan

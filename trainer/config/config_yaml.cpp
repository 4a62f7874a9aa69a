// Loading, overriding and printing the configuration (see config.h).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "trainer/config/config.h"
#include "trainer/config/config_schema.h"

namespace distgan {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

const ConfigKey* find_key(const std::string& path) {
  for (const auto& k : config_schema())
    if (k.path() == path) return &k;
  return nullptr;
}

// "training.ema": the prefix of nested keys such as training.ema.half_life_kimg.
bool is_group(const std::string& path) {
  for (const auto& k : config_schema())
    if (k.path().compare(0, path.size() + 1, path + ".") == 0) return true;
  return false;
}

std::string suggestion(const std::string& key) {
  const std::string near = nearest_key(key);
  return near.empty() ? "" : "; did you mean '" + near + "'?";
}

std::string at(const std::string& origin, const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  return m.is_null() ? origin : origin + ":" + std::to_string(m.line + 1);
}

std::string found_text(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

void set_key(Config& c, const ConfigKey& key, const YAML::Node& value, const std::string& where) {
  const std::string expected = key.set(c, value);
  if (!expected.empty())
    throw ConfigError(where + ": " + key.path() + ": expected " + expected + ", found " + found_text(value));
}

}  // namespace

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& k : config_schema()) keys.push_back(k.path());
  return keys;
}

std::string nearest_key(const std::string& key) { return nearest(key, config_keys()); }

Config parse_config(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ":" + std::to_string(e.mark.line + 1) + ": malformed YAML: " + e.msg);
  }
  Config c;
  c.source_path = origin;
  c.source_text = text;
  if (root.IsNull()) return c;  // an empty file: all defaults
  if (!root.IsMap())
    throw ConfigError(at(origin, root) + ": expected a mapping of sections (data, model, training, ...)");
  const auto& sections = config_sections();
  std::vector<std::string> seen;  // yaml-cpp keeps duplicate keys; a repeated key is almost always a mistake
  auto key_text = [&](const YAML::Node& key, const std::string& prefix) {
    if (!key.IsScalar()) throw ConfigError(at(origin, key) + ": expected a plain key name" +
                                           (prefix.empty() ? "" : " in section '" + prefix + "'"));
    const std::string full = prefix.empty() ? key.Scalar() : prefix + "." + key.Scalar();
    if (std::find(seen.begin(), seen.end(), full) != seen.end())
      throw ConfigError(at(origin, key) + ": '" + full + "' is given twice");
    seen.push_back(full);
    return key.Scalar();
  };
  for (const auto& entry : root) {
    const std::string section = key_text(entry.first, "");
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
      const std::string near = nearest(section, sections);
      throw ConfigError(at(origin, entry.first) + ": unknown section '" + section + "'" +
                        (near.empty() ? "" : "; did you mean '" + near + "'?") + " (sections: data, model, "
                        "training, checkpoint, logging, cluster, eval)");
    }
    if (entry.second.IsNull()) continue;
    if (!entry.second.IsMap())
      throw ConfigError(at(origin, entry.second) + ": section '" + section + "' must be a mapping of keys");
    for (const auto& item : entry.second) {
      const std::string path = section + "." + key_text(item.first, section);
      if (find_key(path) == nullptr && item.second.IsMap() && is_group(path)) {  // training.ema: {...}
        for (const auto& sub : item.second) {
          const std::string sub_path = path + "." + key_text(sub.first, path);
          const ConfigKey* key = find_key(sub_path);
          if (key == nullptr)
            throw ConfigError(at(origin, sub.first) + ": unknown key '" + sub_path + "'" + suggestion(sub_path));
          set_key(c, *key, sub.second, at(origin, sub.second.IsNull() ? sub.first : sub.second));
        }
        continue;
      }
      const ConfigKey* key = find_key(path);
      if (key == nullptr)
        throw ConfigError(at(origin, item.first) + ": unknown key '" + path + "'" + suggestion(path) +
                          (is_group(path) ? " (a group of keys: expected a mapping)" : ""));
      set_key(c, *key, item.second, at(origin, item.second.IsNull() ? item.first : item.second));
    }
  }
  return c;
}

Config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read the config file: " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read the config file");
  return parse_config(text.str(), path);
}

void apply_override(Config& config, const std::string& assignment) {
  const std::string where = "--set " + assignment;
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(where + ": expected section.key=value, e.g. --set training.lr_d=1e-4");
  const std::string path = assignment.substr(0, eq);
  const ConfigKey* key = find_key(path);
  if (key == nullptr) throw ConfigError(where + ": unknown key '" + path + "'" + suggestion(path));
  const std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  const bool quoted = !text.empty() && (text.front() == '"' || text.front() == '\'');
  if (key->literal_string && !quoted) {
    set_key(config, *key, YAML::Node(text), where);
    return;
  }
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(where + ": malformed value: " + e.msg);
  }
  set_key(config, *key, value, where);
}

std::string print_config(const Config& config) {
  std::ostringstream out;
  out << "# distgan configuration (effective values"
      << (config.source_path.empty() ? "" : " from " + config.source_path + " and overrides") << ")\n";
  std::string section, group;
  for (const auto& key : config_schema()) {
    if (key.section != section) {
      section = key.section;
      group.clear();
      out << section << ":\n";
    }
    // Nested keys (training.ema.half_life_kimg) print under their group: "  ema:\n    half_life_kimg: ..."
    const size_t dot = key.name.find('.');
    const std::string key_group = dot == std::string::npos ? "" : key.name.substr(0, dot);
    if (key_group != group && !key_group.empty()) out << "  " << key_group << ":\n";
    group = key_group;
    std::string line = (group.empty() ? "  " + key.name : "    " + key.name.substr(dot + 1)) + ": " + key.get(config);
    line.resize(std::max<size_t>(line.size() + 1, 40), ' ');
    out << line << "# " << key.description << "\n";
  }
  return out.str();
}

}  // namespace distgan

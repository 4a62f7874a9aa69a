#include "trainer/model/optimizer_state.h"

#include <sstream>
#include <type_traits>

namespace distgan {

namespace {

// The key LibTorch uses for `param` in a state map of type Map.
template <typename Map>
typename Map::key_type state_key(const Map&, const torch::Tensor& param) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream key;  // what c10::guts::to_string(param.unsafeGetTensorImpl()) gives
    key << static_cast<const void*>(param.unsafeGetTensorImpl());
    return key.str();
  } else {
    return param.unsafeGetTensorImpl();
  }
}

}  // namespace

torch::optim::AdamParamState* find_adam_state(torch::optim::Adam& optimizer, const torch::Tensor& param) {
  auto& states = optimizer.state();
  const auto it = states.find(state_key(states, param));
  if (it == states.end()) return nullptr;
  return static_cast<torch::optim::AdamParamState*>(it->second.get());
}

torch::optim::AdamParamState& adam_state(torch::optim::Adam& optimizer, const torch::Tensor& param) {
  if (auto* existing = find_adam_state(optimizer, param)) return *existing;
  auto state = std::make_unique<torch::optim::AdamParamState>();
  state->step(0);
  state->exp_avg(torch::zeros_like(param, torch::MemoryFormat::Preserve));
  state->exp_avg_sq(torch::zeros_like(param, torch::MemoryFormat::Preserve));
  auto& states = optimizer.state();
  auto& slot = states[state_key(states, param)];
  slot = std::move(state);
  return static_cast<torch::optim::AdamParamState&>(*slot);
}

}  // namespace distgan

// distgan's version ("0.1.0"), as written into checkpoints, run_info.json and `distgan --version`.
#pragma once

namespace distgan {

const char* distgan_version();

}  // namespace distgan

// main.cpp: a C++ host built against an installed rwkv: rwkv.h's extern "C" guards let the
// linker find the C symbols. Usage: consumer_cpp [MODEL.bin].
#include <rwkv.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

namespace {

struct context_deleter {
    void operator()(rwkv_context * ctx) const { rwkv_free(ctx); }
};
using context_ptr = std::unique_ptr<rwkv_context, context_deleter>;

}  // namespace

int main(int argc, char ** argv) {
    std::printf("consumer_cpp: library %s\n", rwkv_get_version_string());
    if (argc < 2) {
        return 0;
    }
    context_ptr ctx(rwkv_init_from_file(argv[1], 1, 0));
    if (!ctx) {
        std::fprintf(stderr, "consumer_cpp: %s\n", rwkv_get_last_error_message(nullptr));
        return 1;
    }
    std::vector<float> state(rwkv_get_state_len(ctx.get()));
    std::vector<float> logits(rwkv_get_logits_len(ctx.get()));
    const std::vector<uint32_t> prompt = {'H', 'i'};
    if (!rwkv_eval_sequence(ctx.get(), prompt.data(), prompt.size(), nullptr, state.data(), logits.data())) {
        std::fprintf(stderr, "consumer_cpp: %s\n", rwkv_get_last_error_message(ctx.get()));
        return 1;
    }
    const auto best = std::max_element(logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>(rwkv_get_n_vocab(ctx.get())));
    if (!std::isfinite(*best)) {
        std::fprintf(stderr, "consumer_cpp: logits are not finite\n");
        return 1;
    }
    std::printf("consumer_cpp: after \"Hi\" the most likely token is %td (logit %.4f)\n", best - logits.begin(), *best);
    return 0;
}

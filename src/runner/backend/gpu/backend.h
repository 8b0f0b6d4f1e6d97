// The GPU backend as the engine sees it: devices, owned memory, streams and events, and one entry
// point per transformer step. Plain C++: no vendor header leaks out of backend/gpu, so the engine
// compiles with g++ and the same declarations serve the CUDA (nvcc) and ROCm (hipcc) builds.
// Activations are f32 row-major [n_tokens, width]; weights stay in their stored dtype on the device.
// Every call that fails throws gpu::Error naming the runtime call, file and line.
#pragma once

#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "runner/model/model_config.h"
#include "runner/model/weight_format.h"

namespace runner::gpu {

class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct DeviceInfo {
    std::string name;
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    std::string uuid;     // 32 hex digits: what a check's result is cached under
    std::string arch;     // "gfx1100" (ROCm's name, features included) or "sm_90"
    std::string runtime;  // "CUDA driver 13.0, runtime 13.0" or "HIP driver 6.4.43482, runtime 6.4.43482"
    std::string pci;      // "0000:03:00.0": tells apart GPUs whose uuid is not unique (ROCm's "GPU-XX")
    int warp_size = 0;    // 32, or 64 on CDNA
};

int device_count();  // 0 without a driver or a GPU, never throws
void use_device(int index);
DeviceInfo device_info();

// The vendor calls that release each kind of handle (device.cu, blas.cu): every owner below holds its
// handle in a unique_ptr with one of these, so ownership moves and is released exactly once.
struct DeviceFree {
    void operator()(void* p) const noexcept;
};
struct PinnedFree {
    void operator()(std::byte* p) const noexcept;
};
struct StreamDestroy {
    void operator()(void* s) const noexcept;
};
struct EventDestroy {
    void operator()(void* e) const noexcept;
};
struct BlasDestroy {
    void operator()(void* h) const noexcept;
};
struct GraphExecDestroy {
    void operator()(void* g) const noexcept;
};

class Stream;

// Device memory, owned.
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t bytes);
    // Filled with zero bytes by `stream` before the work it runs next.
    static DeviceBuffer zeroed(std::size_t bytes, const Stream& stream);

    void* data() const { return ptr_.get(); }
    template <class T>
    T* as() const {
        return static_cast<T*>(ptr_.get());
    }
    std::size_t bytes() const { return bytes_; }

  private:
    std::unique_ptr<void, DeviceFree> ptr_;
    std::size_t bytes_ = 0;
};

// Page-locked host memory, owned: what host-to-device copies run at full link speed from.
class PinnedBuffer {
  public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(std::size_t bytes);

    std::byte* data() const { return ptr_.get(); }
    std::size_t bytes() const { return bytes_; }

  private:
    std::unique_ptr<std::byte, PinnedFree> ptr_;
    std::size_t bytes_ = 0;
};

// An in-order queue of work on the device, owned.
class Stream {
  public:
    Stream();

    void* handle() const { return handle_.get(); }
    void synchronize() const;

  private:
    std::unique_ptr<void, StreamDestroy> handle_;
};

// A point in a stream that another stream (or the host) can wait for, owned.
class Event {
  public:
    explicit Event(bool timing = false);

    void record(const Stream& stream) const;
    void wait_in(const Stream& stream) const;  // `stream` waits on the device, the host does not
    void synchronize() const;
    bool done() const;  // whether the work before its record has finished; the host does not wait
    float elapsed_ms_since(const Event& start) const;  // both recorded with timing = true

  private:
    std::unique_ptr<void, EventDestroy> handle_;
};

// Work on a stream recorded once and replayed as one launch (CUDA graphs; hipGraph on ROCm): a decode step
// is hundreds of kernels of a few microseconds, and launched one by one the GPU idles between them. A
// replay runs the same kernels on the same buffers with the same arguments, so what changes between
// replays must be read from memory (positions on the device, rows in pinned host memory), and a step
// whose launches would differ needs a new recording (attention_variant says when attention's do).
class Graph {
  public:
    Graph() = default;
    // Records what `enqueue` puts on `stream` without running it, and instantiates it. If recording
    // fails (a runtime without graphs, a call that cannot be recorded) this throws, and the stream runs
    // work as it comes again.
    Graph(const Stream& stream, const std::function<void()>& enqueue);

    void launch(const Stream& stream) const;
    explicit operator bool() const { return exec_ != nullptr; }

  private:
    std::unique_ptr<void, GraphExecDestroy> exec_;
};

// Tests: every recording fails after its work was enqueued, as on a runtime without graphs.
void refuse_graphs(bool on);

// Whether the engine replays decode steps as graphs unless told otherwise: on CUDA, where llama.cpp does
// too; not yet on ROCm, whose hipGraph replays llama.cpp also leaves off by default (GGML_HIP_GRAPHS) and
// which we have not measured on an AMD GPU.
bool graphs_by_default();

// Dense products on the vendor's BLAS, on tensor cores: its handle, bound to one stream, and the scratch
// that activations are converted into (16-bit, the weights' type). cuBLAS on CUDA, linked; rocBLAS on
// ROCm, loaded at run time where it has kernels for the device. Without one (or after a failed check)
// available() is false and matmul uses its own kernels.
class Blas {
  public:
    static bool available();           // loaded, and not turned off by a failed check
    static bool loaded();              // the library loads for the current device, whatever its checks said
    static std::string library();      // which library, or why none: what a check's result is valid for
    static std::string description();  // library(), and whether a failed check turned it off
    // `max_elements`: the largest activation matrix a product will read ([n_tokens, d_in]);
    // `max_weight_elements`: the largest quantized matrix, widened to bf16 for the GEMM (0: none).
    Blas(const Stream& stream, std::size_t max_elements, std::size_t max_weight_elements = 0);

    void* handle() const { return handle_.get(); }
    void* scratch() const { return scratch_.data(); }
    void* weight_scratch() const { return weight_scratch_.data(); }
    std::size_t max_elements() const { return scratch_.bytes() / 2; }
    std::size_t max_weight_elements() const { return weight_scratch_.bytes() / 2; }

  private:
    std::unique_ptr<void, BlasDestroy> handle_;
    DeviceBuffer scratch_;
    DeviceBuffer weight_scratch_;
};

// What the latest known-answer check of the BLAS's products on this device found: after a failure,
// matmul runs its own kernels until a check passes.
void set_blas_checked(bool passed);

void copy_to_device(void* dst, const void* src, std::size_t bytes, const Stream& stream);
void copy_to_host(void* dst, const void* src, std::size_t bytes, const Stream& stream);
void copy_on_device(void* dst, const void* src, std::size_t bytes, const Stream& stream);

// ---- transformer steps (all asynchronous on `stream`) ----------------------------------------------

// out[t, :] = x[t, :] / rms(x[t, :]) * weight      x, out: [n_rows, n]; weight: [n]
void rmsnorm(float* out, const float* x, const void* weight, WeightType type, int n_rows, int n, float eps,
             const Stream& stream);

// out[t, j] = sum_i w[j, i] * x[t, i] (+ bias[j])    x: [n_tokens, d_in]; w: [d_out, d_in]; out: [n_tokens, d_out]
// w may be quantized (q8, q4, or ggml's blocks; bias never is). With `blas`, products of blas_min_tokens tokens or
// more with 16-bit weights run on the BLAS (quantized ones widened to bf16 first), the activations rounded to the
// weights' type (as llama.cpp's cuBLAS path does); otherwise in f32. Decode (up to 8 tokens) with quantized
// weights quantizes x to 8 bits per 32 into `scratch` ([n_tokens, d_in] floats of room) and multiplies
// integers, as the CPU's products do; without a scratch it takes the f32 tiled product.
constexpr int blas_min_tokens = 32;
void matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
            float* scratch, int n_tokens, int d_in, int d_out, const Stream& stream, const Blas* blas = nullptr);

// Tests: decode's quantized products on f32 activations (the tiled kernel), as cpu::use_int8_products(false)
// makes the CPU's, to compare the engine with a reference exactly. Read as work is enqueued: a recorded Graph
// keeps the products it was recorded with.
void use_int8_activations(bool on);

// x[t, :] += w . in[t, :]   (the residual add, fused into the output and down projections); scratch as matmul's.
// `quantized`: the scratch already holds `in` as int8 activations (attention's int8_out), where
// takes_int8_input says the product reads them.
void matmul_add(float* x, const float* in, const void* w, WeightType type, float* scratch, int n_tokens, int d_in,
                int d_out, const Stream& stream, const Blas* blas = nullptr, bool quantized = false);
// Whether a product of these weights, with a scratch, multiplies n_tokens' int8 activations (decode's
// quantized products).
bool takes_int8_input(WeightType type, int n_tokens, int d_in);

// One product of a fused launch: where it goes ([n_tokens, d_out]), its weights [d_out, d_in], its bias.
struct Product {
    float* out = nullptr;
    const void* w = nullptr;
    WeightType type = WeightType::f32;
    int d_out = 0;
    const void* bias = nullptr;
    WeightType bias_type = WeightType::f32;
};

// An RMS normalization of a product's input: x / rms(x) * weight.   weight: [d_in]
struct Norm {
    const void* weight;
    WeightType type;
    float eps;
};

// out_p[t, :] = w_p . rmsnorm(x[t, :]) (+ bias_p) for each product (the q, k and v projections). Decode
// normalizes while it multiplies (or while it quantizes the input into `scratch`, for quantized weights),
// and runs up to three products as one launch per weight type; longer passes normalize into `scratch`
// ([n_tokens, d_in]) and then run each product, or on the BLAS write the norm once as the products' 16-bit
// input.
void norm_matmul(std::span<const Product> products, const float* x, const Norm& norm, float* scratch, int n_tokens,
                 int d_in, const Stream& stream, const Blas* blas = nullptr);

// out = silu(w_gate . rmsnorm(x)) * (w_up . rmsnorm(x))   w_gate, w_up: [d_out, d_in] of `type`; out, up:
// [n_tokens, d_out]. Decode reads both matrices in one launch and writes only `out`; longer passes use
// `scratch` ([n_tokens, d_in]) and `up`.
void norm_matmul_swiglu(float* out, float* up, float* scratch, const float* x, const Norm& norm, const void* w_gate,
                        const void* w_up, WeightType type, int n_tokens, int d_in, int d_out, const Stream& stream,
                        const Blas* blas = nullptr);

// Rows of an MLP as one block of a slab: `rows` rows of gate and up ([rows, d_in]) and the matching columns of
// down ([d_in, rows]).
struct MlpBlock {
    const void *gate, *up, *down;
    int rows;
};

// x[t, :] += the MLP of rmsnorm(x[t, :]) over every block's rows (a split layer's two blocks are the MLP's rows
// in two places). gate, up: each block's [n_tokens, rows] floats one after another (decode then reuses `up` as
// down's int8 input); scratch as matmul's. Each block's gate and up are computed before any down product adds
// to x. On the BLAS the norm is written once as every gate and up product's 16-bit input, and SwiGLU writes
// down's 16-bit input, where down takes the same type.
void norm_mlp(float* x, const Norm& norm, std::span<const MlpBlock> blocks, WeightType gate_up_type,
              WeightType down_type, float* gate, float* up, float* scratch, int n_tokens, int d_in,
              const Stream& stream, const Blas* blas = nullptr);

// One layer's KV cache, [n_ctx, n_head_kv * head_dim] of a KvType for the keys and again for the values:
// rows [0, near_rows) at k and v, and where a long context's cache is split, the rows from near_rows on
// at k_far and v_far, in pinned host memory that decode's kernels write and read over the link.
struct KvRows {
    void* k = nullptr;
    void* v = nullptr;
    int near_rows = std::numeric_limits<int>::max();
    void* k_far = nullptr;
    void* v_far = nullptr;
};

// Rotary embedding of q and k in place (frequency i turning the pair of dimensions `pairs` says), then
// k and v into the cache rows positions[t].   q: [n_tokens, n_head * head_dim]; k, v: [n_tokens, n_head_kv * head_dim];
// cache: one layer's, of `kv_type`; inv_freq: [head_dim / 2]; positions: [n_tokens] on the device
void rope_store_kv(float* q, float* k, const float* v, const KvRows& cache, KvType kv_type, int n_tokens, int n_head,
                   int n_head_kv, int head_dim, const float* inv_freq, const int* positions, RopePairs pairs,
                   const Stream& stream);

// Causal grouped-query attention over cache positions 0..positions[t], with an online softmax over
// key tiles (no [n_tokens, n_ctx] score buffer).   q, out: [n_tokens, n_head * head_dim]; cache: one
// layer's, of `kv_type`; a prompt's (16 tokens or more) must hold its n_keys rows near, where each query
// tile reads every key: split caches are staged into VRAM for prompts. With `scratch`
// (the most attention_scratch_bytes for the cache's n_ctx over the passes it serves, zeroed when
// allocated: it holds counters at a place that depends only on n_head, which each launch leaves at zero),
// decode splits the keys across blocks; without, each (token, head) is one block. n_keys: at
// least every positions[t] + 1, at most n_ctx. Decode divides these keys among its blocks, so it is the keys in use,
// not the cache's capacity: a short conversation in a 32k cache must not leave one block to walk all its keys while the
// others find none.
std::size_t attention_scratch_bytes(int n_tokens, int n_head, int head_dim, int n_ctx);
// int8_out (decode, where attention_writes_int8): the output is also written there quantized, as the next
// product's int8 input (matmul_add's `quantized`), which saves that product its quantizing launch; room for
// n_tokens * n_head * head_dim floats, as that product's scratch. A recorded Graph keeps the int8_out it was
// recorded with, so replays must pass the same.
//
// With `rope` (one token, attention_ropes), q and k come straight from their projections: attention first does
// rope_store_kv's work (the same arithmetic, so the same cache and output), a launch less a layer.
struct RopeFirst {
    const float* k = nullptr;  // [n_head_kv * head_dim], not yet rotated
    const float* v = nullptr;
    const float* inv_freq = nullptr;
    RopePairs pairs = RopePairs::half;
};
void attention(float* out, const float* q, const KvRows& cache, KvType kv_type, int n_tokens, const int* positions,
               int n_head, int n_head_kv, int head_dim, int n_keys, float* scratch, const Stream& stream,
               float* int8_out = nullptr, const RopeFirst* rope = nullptr);
// Whether attention can take RopeFirst: one token, whose blocks read no other token's new key.
bool attention_ropes(int n_tokens);
// Whether attention can write int8_out: a decode pass (fewer tokens than a prompt's kernel takes; the product
// must take them too, takes_int8_input) whose head_dim is whole blocks of 32.
bool attention_writes_int8(int n_tokens, int head_dim);
// Decode's launches for n_keys keys of `cache`: calls whose variants are equal enqueue the same kernels with
// the same arguments (each token's keys are read from its position on the device), so a recorded Graph
// serves all of them. It changes only where the keys reach the cache's far rows, and where they pass a
// power of two of key tiles below the most splits.
int attention_variant(int n_tokens, int n_head, int n_keys, const KvRows& cache);
// Whether prompts on the current device take the tensor-core kernel (f16 cache, this head_dim).
bool attention_on_tensor_cores(KvType kv_type, int head_dim);

// gate = silu(gate) * up.   gate, up: [n]
void swiglu(float* gate, const float* up, std::size_t n, const Stream& stream);

// x += y.   x: [n] on the device; y: [n] on the device or in pinned host memory, which the kernel reads
// over the link itself (a few rows: no copy to queue behind the copy engines' big transfers)
void add(float* x, const float* y, std::size_t n, const Stream& stream);

}  // namespace runner::gpu

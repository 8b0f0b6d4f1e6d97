// Causal grouped-query attention, flash style: keys are visited in tiles with a running maximum and
// sum (online softmax), so memory is O(tile), not O(n_tokens * n_ctx). A prompt shares each K/V
// tile among a block of queries. For a few tokens (decode) a block serves the query heads of a KV
// group together, so each cache row is read once for all of them, and the keys are split across
// blocks too (flash-decoding), the partial results merged by the last block to finish, so that a long
// context keeps the whole GPU busy. Prompts on GPUs with tensor cores and an f16 cache take
// attention_tensor.cu. The kernels here read either cache type and compute in f32.
#include <algorithm>
#include <bit>
#include <cmath>

#include "runner/backend/gpu/attention_tensor.h"
#include "runner/backend/gpu/int8_input.h"
#include "runner/backend/gpu/launch.h"
#include "runner/backend/gpu/rotary.h"

namespace runner::gpu {

namespace {

constexpr int max_head_dim = 256;  // what any kernel here serves

// Decode: each block serves up to decode_heads query heads of one KV group (Llama-3-8B's 4), so a
// key or value row read from the cache serves all of them, and the keys are split across blocks in
// slices of whole tiles (decode_keys), as many as decode_splits says keep the GPU busy. Within a block
// each warp walks its own keys with its own online softmax, so the loop has no barrier, and where it can
// copy asynchronously it copies the next chunk of rows into shared memory while it computes this one, so
// the loads stay in flight (loaded into registers, the time went to waiting on them: 9 of each
// instruction's 14 cycles under ncu at 32,768 keys). The last block of a group to finish merges the
// splits' partials (its arrival counted in the scratch), which saves a second launch. A block finds its
// keys from its token's position on the device, so that a recorded decode step replays for the next
// positions.
constexpr int decode_heads = 4;
constexpr int decode_threads = 128;
constexpr int decode_keys = 32;  // per tile: the unit the keys are split in
constexpr int decode_blocks = 512;
constexpr int split_most_tiles = 8;  // the most a split takes while more splits are allowed (256 keys)
constexpr int max_splits = 64;
constexpr int row_elements = 16;  // of a key or value row, per lane
constexpr int key_steps = 2;      // keys per lane in a chunk
// The kernel's second launch bound, which sets its registers: blocks an SM on NVIDIA (4: 128 registers a
// thread), waves a SIMD under HIP, where 2 still make 4 blocks a CU for CDNA's waves of 64 and leave them
// 256 VGPRs (gfx90a takes 208 without spills, against 128 and spills at 4).
constexpr int decode_min_blocks = warp_size == 64 ? 2 : 4;

// Decode's passes are shorter than this; prompts of at least this many tokens take the tiled kernels.
constexpr int prompt_min_tokens = 16;

// The scratch holds an arrival counter per group of blocks, zero between launches, then the partials
// 256-byte aligned. The counters' place is the same for every pass of a model (room for a group per
// (token, query head) of the longest decode pass), as one scratch serves passes of any length.
__host__ __device__ inline std::size_t arrival_slots(int n_head) {
    return (static_cast<std::size_t>(prompt_min_tokens - 1) * n_head + 63) / 64 * 64;
}

__device__ inline float kv_at(const float* cache, std::size_t i) { return cache[i]; }
__device__ inline float kv_at(const unsigned short* cache, std::size_t i) { return f16_to_f32(cache[i]); }

// N consecutive elements of a cache row as stored: one load where the row's length is a multiple of N
// (`aligned`), else element by element up to `n`, zeros past it.
template <class T, int N>
struct alignas(N * sizeof(T)) Run {
    T v[N];
};

template <class T, int N>
__device__ inline Run<T, N> load_run(const T* row, int at, int n, bool aligned) {
    if (aligned && at + N <= n) return *reinterpret_cast<const Run<T, N>*>(row + at);
    Run<T, N> r;
    for (int k = 0; k < N; ++k) r.v[k] = at + k < n ? row[at + k] : T{};
    return r;
}

// The weight of a part of the keys whose maximum score is m, against the common maximum `top`: none for a
// part without keys.
__device__ inline float part_weight(float m, float top) { return m == -INFINITY ? 0.f : expf(m - top); }

// A split's partial for a (token, query head): its unnormalized output, then its maximum score and sum
// at partial_stats, in a row of partial_stride floats, whole float4s so that the merge reads them four at once.
__host__ __device__ inline int partial_stats(int head_dim) { return (head_dim + 3) / 4 * 4; }
__host__ __device__ inline int partial_stride(int head_dim) { return partial_stats(head_dim) + 4; }

// A group's splits merged by its last block. partials: the group's first head's [n_h, n_splits,
// partial_stride] (empty splits: max -inf, sum 0), the heads' consecutive; out: that head's output row, the
// others' following, at flat index `first` of the output (and of q8, where the output is quantized too).
// Each split's weight once per (head, split), a warp per head; then a thread per four output elements sums
// them over the splits, eight float4 loads in flight (at head_dim 128 each thread has one such group, so the
// merge is 8 rounds of loads at 64 splits); eight adjacent threads hold a block of 32 to quantize.
__device__ void merge_splits(float* out, const float* partials, int n_h, int head_dim, int n_splits, Int8Input q8,
                             std::size_t first) {
    constexpr int H = decode_heads, n_warps = decode_threads / warp_size;
    __shared__ float split_w[H][max_splits];
    __shared__ float merged_l[H];
    const int tid = static_cast<int>(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size;
    const int stats = partial_stats(head_dim), stride = partial_stride(head_dim), quads = stats / 4;
    const auto head_partials = [&](int h) { return partials + static_cast<std::size_t>(h) * n_splits * stride; };
    for (int e = tid; e < n_h * n_splits; e += decode_threads)
        split_w[e / n_splits][e % n_splits] = head_partials(e / n_splits)[(e % n_splits) * stride + stats];
    __syncthreads();
    for (int h = warp; h < n_h; h += n_warps) {
        const float* ph = head_partials(h);
        float top = -INFINITY;
        for (int sp = lane; sp < n_splits; sp += warp_size) top = fmaxf(top, split_w[h][sp]);
        top = warp_max(top);
        float sum = 0.f;
        for (int sp = lane; sp < n_splits; sp += warp_size) {
            split_w[h][sp] = part_weight(split_w[h][sp], top);
            sum += split_w[h][sp] * ph[sp * stride + stats + 1];
        }
        sum = warp_sum(sum);
        if (lane == 0) merged_l[h] = sum;
    }
    __syncthreads();
    // Every thread takes every round (the quantization shuffles), and a round's eight-thread groups are
    // wholly inside or outside, as quads is a multiple of 8 where the output is quantized.
    for (int e0 = 0; e0 < n_h * quads; e0 += decode_threads) {
        const int e = e0 + tid;
        const bool inside = e < n_h * quads;
        const int h = inside ? e / quads : 0, d = e % quads * 4;
        const float* ph = head_partials(h) + d;
        const auto at = [&](int sp) {
            return *reinterpret_cast<const float4*>(ph + static_cast<std::size_t>(sp) * stride);
        };
        float4 a[8] = {};
        const auto add = [&](float4& to, int sp) {
            const float w = split_w[h][sp];
            const float4 v = at(sp);
            to.x += w * v.x, to.y += w * v.y, to.z += w * v.z, to.w += w * v.w;
        };
        int sp = 0;
        for (; inside && sp + 8 <= n_splits; sp += 8)
            for (int k = 0; k < 8; ++k) add(a[k], sp + k);
        for (; inside && sp < n_splits; ++sp) add(a[0], sp);
        float total[4] = {};
        for (int k = 0; k < 8; ++k) total[0] += a[k].x, total[1] += a[k].y, total[2] += a[k].z, total[3] += a[k].w;
        for (int i = 0; i < 4; ++i) total[i] /= merged_l[h];
        for (int i = 0; i < 4 && inside && d + i < head_dim; ++i) out[h * head_dim + d + i] = total[i];
        if (q8.q) quantize_block(q8, first + static_cast<std::size_t>(h) * head_dim + d, total, inside);
    }
}

// RopeFirst, for a block of one token's decode: its heads' queries in qs turned, then scaled as the scores want
// them; where the block's keys end at the token's own, that key turned and the token's key and value rows
// written into the cache at `pos` (each block of the KV head that reads them writes the same bits). The caller
// puts a barrier between this and any read of qs or of the rows.
template <class T, int HD, bool reaches_far>
__device__ void rope_first(float (&qs)[decode_heads][HD], const RopeFirst& rope, const KvRows& cache, int pos, int n_h,
                           std::size_t head_at, std::size_t kv_stride, int head_dim, float scale, bool writes_key) {
    const int half = head_dim / 2;
    const bool adjacent = rope.pairs == RopePairs::adjacent;
    T* const k_row = cache_row<T, reaches_far>(cache, true, pos, kv_stride) + head_at;
    T* const v_row = cache_row<T, reaches_far>(cache, false, pos, kv_stride) + head_at;
    for (int e = static_cast<int>(threadIdx.x); e < (decode_heads + 1) * half; e += decode_threads) {
        const int h = e / half, i = e % half;
        const bool key = h == decode_heads;
        if (key ? !writes_key : h >= n_h) continue;
        const RotaryPair r = rotary_pair(i, head_dim, pos, rope.inv_freq, adjacent);
        if (!key) {
            const float2 turned = rotate(r, qs[h][r.first], qs[h][r.second]);
            qs[h][r.first] = turned.x * scale, qs[h][r.second] = turned.y * scale;
            continue;
        }
        const float2 turned = rotate(r, rope.k[head_at + r.first], rope.k[head_at + r.second]);
        store_kv(k_row, static_cast<std::size_t>(r.first), turned.x);
        store_kv(k_row, static_cast<std::size_t>(r.second), turned.y);
        store_kv(v_row, static_cast<std::size_t>(r.first), rope.v[head_at + r.first]);
        store_kv(v_row, static_cast<std::size_t>(r.second), rope.v[head_at + r.second]);
    }
}

// One block per (token, KV head, group of up to decode_heads query heads of it, split of the keys). A warp
// takes chunks of its split's keys in turn with the other warps; with an f16 cache on NVIDIA sm_80 and later
// each chunk's key and value rows are copied into the warp's ring in shared memory a chunk ahead of the one
// it computes, elsewhere loaded into registers as it comes to them. Keys: lanes_per_key lanes to
// a row, each holding row_elements of it in two runs of 8 (the lanes' runs adjacent), key_steps keys per
// lane; the lanes' dot products with each head's query (from shared memory) summed over a key's lanes.
// Softmax: the chunk's maximum over the warp, the sums kept per key slot, rescaled only when the maximum
// grows. Values: every row across the warp (HD / warp_size elements a lane), each key's weight shuffled
// from its lanes, so a lane's sums cover the warp's keys and need no reduction. The block then combines
// its warps and writes the normalized output when there is one split; else the partial (max, sum,
// unnormalized output), and the group's last block to arrive merges every split's. Four blocks an SM (128
// registers on NVIDIA; with the ring 36 KB of shared memory a block, which sm_80 and sm_90 hold four times
// over, sm_86 and sm_89 twice). On an H100, at 64 / 4096 / 32,768 keys: 19 / 30 / 140 us with the rows loaded
// into registers, 11 / 23 / 67 through the ring (docs/benchmarks.md). HD: the largest head_dim the
// instance serves, 64, 128 or 256. `reaches_far`: the keys reach the cache's far rows (a test per row,
// which made attention over a whole cache's 4096 keys 3% slower).
template <class T, int HD, bool reaches_far>
__global__ void __launch_bounds__(decode_threads, decode_min_blocks)
    attention_decode_kernel(float* out, float* scratch, const float* q, KvRows cache, const int* positions, int n_head,
                            int n_head_kv, int head_dim, float scale, int n_splits, Int8Input q8, RopeFirst rope) {
    constexpr int H = decode_heads, U = key_steps, n_warps = decode_threads / warp_size;
    constexpr int lanes_per_key = HD / row_elements, keys_per_step = warp_size / lanes_per_key;
    constexpr int chunk = keys_per_step * U, DV = HD / warp_size;
    static_assert(HD % row_elements == 0 && warp_size % lanes_per_key == 0 && row_elements == 16 && DV >= 1);
    // Rows pass through a ring of two chunks a warp in shared memory (32 KB a block) where copies into it
    // are asynchronous and the cache is f16. Elsewhere they load straight into registers: there a ring
    // would overlap nothing and only cost shared memory, blocks an SM (CDNA: one a CU), and for an f32
    // cache a second 32 KB. The pool holds the rings while the warps walk their keys, then their sums.
    constexpr bool use_ring = async_copies && sizeof(T) == 2;
    constexpr int ring_row = use_ring ? chunk * HD : 1;  // a stage's key (or value) rows
    union alignas(32) Pool {
        T ring[n_warps][2][2][ring_row];
        float warp_acc[n_warps][H][HD];
    };
    __shared__ float qs[H][HD];
    __shared__ Pool pool;
    __shared__ float warp_m[n_warps][H], warp_l[n_warps][H];
    __shared__ bool last;
    const int group = n_head / n_head_kv, chunks = (group + H - 1) / H;
    const int chunk_of_group = static_cast<int>(blockIdx.x) % chunks;
    const int kv_head = static_cast<int>(blockIdx.x) / chunks % n_head_kv;
    const int t = static_cast<int>(blockIdx.x) / chunks / n_head_kv, split = static_cast<int>(blockIdx.y);
    const int h0 = kv_head * group + chunk_of_group * H, n_h = min(H, group - chunk_of_group * H);
    const int tid = static_cast<int>(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size;
    const int part = lane % lanes_per_key, slot = lane / lanes_per_key;
    const std::size_t kv_stride = static_cast<std::size_t>(n_head_kv) * head_dim;
    const std::size_t head_at = static_cast<std::size_t>(kv_head) * head_dim;
    // The lane's two runs of a key row start at these elements.
    const int run_at[2] = {part * 8, (lanes_per_key + part) * 8};
    let_next_kernel_start();
    wait_for_previous_kernel();

    const bool turns = rope.k != nullptr;  // RopeFirst: q scaled once turned
    for (int e = tid; e < H * HD; e += decode_threads) {
        const int h = e / HD, d = e % HD;
        qs[h][d] = h < n_h && d < head_dim
                       ? q[(static_cast<std::size_t>(t) * n_head + h0 + h) * head_dim + d] * (turns ? 1.f : scale)
                       : 0.f;
    }
    float m[H], l[H], acc[H][DV];
    for (int h = 0; h < H; ++h) {
        m[h] = -INFINITY, l[h] = 0.f;
        for (int i = 0; i < DV; ++i) acc[h][i] = 0.f;
    }
    const int n_keys = positions[t] + 1;
    const int keys_per_split = ((n_keys + decode_keys - 1) / decode_keys + n_splits - 1) / n_splits * decode_keys;
    const int begin = split * keys_per_split, end = min(n_keys, begin + keys_per_split);
    __syncthreads();
    if (turns) {
        rope_first<T, HD, reaches_far>(qs, rope, cache, n_keys - 1, n_h, head_at, kv_stride, head_dim, scale,
                                       begin < end && end == n_keys);
        __syncthreads();
    }
    // A chunk's rows as the lanes compute them: key j = u * keys_per_step + slot in the scoring layout,
    // every value row across the warp. Keys past the split's end repeat its last key, whose scores are then
    // masked: loads without branches.
    struct Rows {
        Run<T, 8> k[U][2];
        Run<T, DV> v[chunk];
    };
    const auto row_of = [&](bool keys, int key) {
        return cache_row<const T, reaches_far>(cache, keys, min(key, end - 1), kv_stride) + head_at;
    };
    const auto load_chunk = [&](int c0) {
        const bool k_aligned = head_dim % 8 == 0, v_aligned = head_dim % DV == 0;
        Rows rows;
        for (int u = 0; u < U; ++u)
            for (int r = 0; r < 2; ++r)
                rows.k[u][r] =
                    load_run<T, 8>(row_of(true, c0 + u * keys_per_step + slot), run_at[r], head_dim, k_aligned);
        for (int j = 0; j < chunk; ++j)
            rows.v[j] = load_run<T, DV>(row_of(false, c0 + j), lane * DV, head_dim, v_aligned);
        return rows;
    };
    // The ring: a stage holds a chunk's key rows then its value rows, HD elements each (zeros past
    // head_dim, which the scores read), copied in whole 16-byte pieces where rows are made of them.
    T(&own_ring)[2][2][ring_row] = pool.ring[warp];
    const auto copy_chunk = [&](int c0, int stage) {
        constexpr int per_piece = 16 / sizeof(T), pieces = HD / per_piece;
        for (int kv = 0; kv < 2; ++kv) {
            T* to = own_ring[stage][kv];
            if (head_dim * sizeof(T) % 16 == 0)
                for (int f = lane; f < chunk * pieces; f += warp_size) {
                    const int j = f / pieces, at = f % pieces * per_piece;
                    if (at < head_dim) copy_async_16(to + j * HD + at, row_of(kv == 0, c0 + j) + at);
                }
            else
                for (int e = lane; e < chunk * HD; e += warp_size)
                    if (e % HD < head_dim) to[e] = row_of(kv == 0, c0 + e / HD)[e % HD];
        }
    };
    const auto read_chunk = [&](int stage) {
        Rows rows;
        for (int u = 0; u < U; ++u)
            for (int r = 0; r < 2; ++r)
                rows.k[u][r] = *reinterpret_cast<const Run<T, 8>*>(
                    &own_ring[stage][0][(u * keys_per_step + slot) * HD + run_at[r]]);
        for (int j = 0; j < chunk; ++j)
            rows.v[j] = *reinterpret_cast<const Run<T, DV>*>(&own_ring[stage][1][j * HD + lane * DV]);
        return rows;
    };
    const int first = begin + warp * chunk, step = n_warps * chunk;
    if constexpr (use_ring) {
        if (head_dim < HD) {
            for (int e = lane; e < 2 * 2 * ring_row; e += warp_size) (&own_ring[0][0][0])[e] = T{};
            warp_sync();
        }
        if (first < end) copy_chunk(first, 0);
        copy_commit();
    }
    for (int c0 = first, stage = 0; c0 < end; c0 += step, stage ^= 1) {
        Rows rows;
        if constexpr (use_ring) {
            if (c0 + step < end) copy_chunk(c0 + step, stage ^ 1);
            copy_commit();
            copy_wait<1>();  // this chunk's copies, committed one group ago
            warp_sync();
            rows = read_chunk(stage);
            warp_sync();  // the stage is free for the next chunk's copies
        } else {
            rows = load_chunk(c0);
        }
        float s[U][H] = {};
        for (int r = 0; r < 2; ++r)
            for (int e = 0; e < 8; ++e)
                for (int h = 0; h < H; ++h) {
                    const float qe = qs[h][run_at[r] + e];
                    for (int u = 0; u < U; ++u) s[u][h] += qe * kv_at(rows.k[u][r].v, static_cast<std::size_t>(e));
                }
        for (int u = 0; u < U; ++u)
            for (int h = 0; h < H; ++h) {
                for (int o = 1; o < lanes_per_key; o *= 2) s[u][h] += shfl_xor(s[u][h], o);
                if (c0 + u * keys_per_step + slot >= end) s[u][h] = -INFINITY;
            }
        for (int h = 0; h < H; ++h) {
            float top = s[0][h];
            for (int u = 1; u < U; ++u) top = fmaxf(top, s[u][h]);
            for (int o = lanes_per_key; o < warp_size; o *= 2) top = fmaxf(top, shfl_xor(top, o));
            if (top > m[h]) {  // the same in every lane: the chunk's first key is in range
                const float correction = expf(m[h] - top);
                l[h] *= correction;
                for (int i = 0; i < DV; ++i) acc[h][i] *= correction;
                m[h] = top;
            }
            for (int u = 0; u < U; ++u) {
                s[u][h] = expf(s[u][h] - m[h]);  // the key's weight, in its lanes
                l[h] += s[u][h];
            }
        }
        for (int j = 0; j < chunk; ++j)
            for (int h = 0; h < H; ++h) {
                const float p = shfl_from(s[j / keys_per_step][h], j % keys_per_step * lanes_per_key);
                for (int i = 0; i < DV; ++i) acc[h][i] += p * kv_at(rows.v[j].v, static_cast<std::size_t>(i));
            }
    }

    // The warp's keys: the slots' sums added, each lane's values written once every warp is done with its
    // ring (every chunk copied was computed, so none is in flight: the wait only guards later edits), then
    // the warps combined.
    for (int h = 0; h < H; ++h)
        for (int o = lanes_per_key; o < warp_size; o *= 2) l[h] += shfl_xor(l[h], o);
    copy_wait<0>();
    __syncthreads();
    for (int h = 0; h < H; ++h)
        for (int i = 0; i < DV; ++i) pool.warp_acc[warp][h][lane * DV + i] = acc[h][i];
    if (lane == 0)
        for (int h = 0; h < H; ++h) warp_m[warp][h] = m[h], warp_l[warp][h] = l[h];
    __syncthreads();
    // The group's heads are consecutive (token, head) pairs: their output rows, and their partials
    // [pairs, n_splits, partial_stride] (empty splits: max -inf, sum 0).
    const std::size_t first_pair = static_cast<std::size_t>(t) * n_head + h0;
    float* const group_out = out + first_pair * head_dim;
    const int stats = partial_stats(head_dim);
    float* const group_partials =
        n_splits > 1 ? scratch + arrival_slots(n_head) + first_pair * n_splits * partial_stride(head_dim) : nullptr;
    // Every thread takes every round (H * HD is a multiple of the block), as each 32 consecutive elements (a
    // warp's, or half a 64-wide wave's), a block of one head's output, are quantized together.
    for (int e = tid; e < H * HD; e += decode_threads) {
        const int h = e / HD, d = e % HD;
        const bool inside = h < n_h && d < head_dim;
        float top = -INFINITY, a = 0.f, sum = 0.f;
        for (int w = 0; inside && w < n_warps; ++w) top = fmaxf(top, warp_m[w][h]);
        for (int w = 0; inside && w < n_warps; ++w) {
            const float weight = part_weight(warp_m[w][h], top);
            a += weight * pool.warp_acc[w][h][d];
            sum += weight * warp_l[w][h];
        }
        if (n_splits == 1) {
            const float value[1] = {inside ? a / sum : 0.f};
            if (inside) group_out[h * head_dim + d] = value[0];
            if (q8.q)
                quantize_block(q8, first_pair * head_dim + static_cast<std::size_t>(h) * head_dim + d, value, inside);
            continue;
        }
        if (!inside) continue;
        float* ph = group_partials + (static_cast<std::size_t>(h) * n_splits + split) * partial_stride(head_dim);
        ph[d] = a;
        if (d == 0) ph[stats] = top, ph[stats + 1] = sum;
    }
    if (n_splits == 1) return;

    // The group's last block to arrive merges. Each block's fence makes its partials visible before its
    // arrival counts; the last one's, after it has counted every arrival, orders its reads after them.
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        auto* arrivals = reinterpret_cast<unsigned*>(scratch);
        last = atomicInc(&arrivals[blockIdx.x], static_cast<unsigned>(n_splits - 1)) ==
               static_cast<unsigned>(n_splits - 1);  // and wraps to 0 for the next launch
        if (last) __threadfence();
    }
    __syncthreads();
    if (last) merge_splits(group_out, group_partials, n_h, head_dim, n_splits, q8, first_pair * head_dim);
}

// A prompt: a block per (head, QB consecutive query tokens); K and V tiles of KT keys are loaded
// into shared memory once for all QB queries (rows padded against bank conflicts). Each of the 4
// warps owns QB / 4 queries; in scoring a lane takes a key, in the weighted sum a lane takes
// head dimensions. HD is the largest head_dim the instance serves.
template <class T, int HD, int QB, int KT>
__global__ void attention_prompt_kernel(float* out, const float* q, const T* k_cache, const T* v_cache,
                                        const int* positions, int n_tokens, int n_head, int n_head_kv, int head_dim,
                                        float scale) {
    constexpr int n_warps = 4, per_warp = QB / n_warps, dims_per_lane = HD / warp_size;
    static_assert(QB % n_warps == 0 && HD % warp_size == 0 && KT <= warp_size);
    __shared__ float qs[QB][HD + 1];
    __shared__ float ks[KT][HD + 1];
    __shared__ float vs[KT][HD];
    const int h = blockIdx.y, t0 = blockIdx.x * QB;
    const int kv_head = h / (n_head / n_head_kv);
    const std::size_t kv_stride = static_cast<std::size_t>(n_head_kv) * head_dim;
    const int tid = static_cast<int>(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size;

    for (int e = tid; e < QB * head_dim; e += blockDim.x) {
        const int i = e / head_dim, d = e % head_dim, t = t0 + i;
        qs[i][d] = t < n_tokens ? q[(static_cast<std::size_t>(t) * n_head + h) * head_dim + d] : 0.f;
    }
    int last_key = 0;  // the block's largest position: keys beyond it are masked for every query
    for (int i = 0; i < QB && t0 + i < n_tokens; ++i) last_key = max(last_key, positions[t0 + i]);

    float m[per_warp], l[per_warp], acc[per_warp][dims_per_lane];
    int pos[per_warp];
    for (int i = 0; i < per_warp; ++i) {
        m[i] = -INFINITY, l[i] = 0.f;
        const int t = t0 + warp * per_warp + i;
        pos[i] = t < n_tokens ? positions[t] : -1;
        for (int k = 0; k < dims_per_lane; ++k) acc[i][k] = 0.f;
    }
    for (int k0 = 0; k0 <= last_key; k0 += KT) {
        __syncthreads();  // the previous tile is no longer read
        for (int e = tid; e < KT * head_dim; e += blockDim.x) {
            const int j = e / head_dim, d = e % head_dim, key = k0 + j;
            const bool in = key <= last_key;
            const std::size_t at = static_cast<std::size_t>(key) * kv_stride + kv_head * head_dim + d;
            ks[j][d] = in ? kv_at(k_cache, at) : 0.f;
            vs[j][d] = in ? kv_at(v_cache, at) : 0.f;
        }
        __syncthreads();
        for (int i = 0; i < per_warp; ++i) {
            if (pos[i] < k0) continue;  // every key of the tile is in this query's future
            const int qi = warp * per_warp + i;
            float s = -INFINITY;
            if (lane < KT && k0 + lane <= pos[i]) {
                float dot = 0.f;
                for (int d = 0; d < head_dim; ++d) dot += qs[qi][d] * ks[lane][d];
                s = dot * scale;
            }
            const float m_new = fmaxf(m[i], warp_max(s));
            const float p = s == -INFINITY ? 0.f : expf(s - m_new);
            const float correction = expf(m[i] - m_new);
            l[i] = l[i] * correction + warp_sum(p);
            for (int k = 0; k < dims_per_lane; ++k) acc[i][k] *= correction;
            for (int j = 0; j < KT; ++j) {
                const float pj = shfl_from(p, j);
                for (int k = 0; k < dims_per_lane; ++k) {
                    const int d = lane + k * warp_size;
                    if (d < head_dim) acc[i][k] += pj * vs[j][d];
                }
            }
            m[i] = m_new;
        }
    }
    for (int i = 0; i < per_warp; ++i) {
        const int t = t0 + warp * per_warp + i;
        if (t >= n_tokens) continue;
        float* oh = out + (static_cast<std::size_t>(t) * n_head + h) * head_dim;
        for (int k = 0; k < dims_per_lane; ++k) {
            const int d = lane + k * warp_size;
            if (d < head_dim) oh[d] = acc[i][k] / l[i];
        }
    }
}

template <class T, int HD, int QB, int KT>
void launch_prompt_tiles(float* out, const float* q, const void* k_cache, const void* v_cache, const int* positions,
                         int n_tokens, int n_head, int n_head_kv, int head_dim, float scale, cudaStream_t s) {
    const dim3 grid(static_cast<unsigned>((n_tokens + QB - 1) / QB), static_cast<unsigned>(n_head));
    attention_prompt_kernel<T, HD, QB, KT><<<grid, 4 * warp_size, 0, s>>>(out, q, static_cast<const T*>(k_cache),
                                                                          static_cast<const T*>(v_cache), positions,
                                                                          n_tokens, n_head, n_head_kv, head_dim, scale);
}

template <class T>
void launch_prompt(float* out, const float* q, const void* k_cache, const void* v_cache, const int* positions,
                   int n_tokens, int n_head, int n_head_kv, int head_dim, float scale, cudaStream_t s) {
    if (head_dim <= 64)
        launch_prompt_tiles<T, 64, 16, 32>(out, q, k_cache, v_cache, positions, n_tokens, n_head, n_head_kv, head_dim,
                                           scale, s);
    else if (head_dim <= 128)
        launch_prompt_tiles<T, 128, 16, 32>(out, q, k_cache, v_cache, positions, n_tokens, n_head, n_head_kv, head_dim,
                                            scale, s);
    else
        launch_prompt_tiles<T, 256, 8, 16>(out, q, k_cache, v_cache, positions, n_tokens, n_head, n_head_kv, head_dim,
                                           scale, s);
}

template <class T, int HD, bool reaches_far>
void launch_decode(float* out, float* scratch, const float* q, const KvRows& cache, const int* positions, int n_tokens,
                   int n_head, int n_head_kv, int head_dim, float scale, int n_splits, Int8Input q8,
                   const RopeFirst& rope, cudaStream_t s) {
    const int chunks = (n_head / n_head_kv + decode_heads - 1) / decode_heads;
    const dim3 grid(static_cast<unsigned>(n_tokens * n_head_kv * chunks), static_cast<unsigned>(n_splits));
    launch_overlapped(attention_decode_kernel<T, HD, reaches_far>, grid, decode_threads, s, out, scratch, q, cache,
                      positions, n_head, n_head_kv, head_dim, scale, n_splits, q8, rope);
}

template <class T, bool reaches_far>
void launch_decode(float* out, float* scratch, const float* q, const KvRows& cache, const int* positions, int n_tokens,
                   int n_head, int n_head_kv, int head_dim, float scale, int n_splits, Int8Input q8,
                   const RopeFirst& rope, cudaStream_t s) {
    const auto launch = head_dim <= 64    ? launch_decode<T, 64, reaches_far>
                        : head_dim <= 128 ? launch_decode<T, 128, reaches_far>
                                          : launch_decode<T, 256, reaches_far>;
    launch(out, scratch, q, cache, positions, n_tokens, n_head, n_head_kv, head_dim, scale, n_splits, q8, rope, s);
}

// How many blocks decode divides the keys among: enough splits for about decode_blocks blocks (each
// serving decode_heads of the `n_pairs` (token, query head) pairs), or where that leaves a split more than
// split_most_tiles tiles, as many as keep it to those (up to max_splits); and slices of at least two
// tiles, as a slice of one spends more merging than it saves. Counted in the tiles' power of two, so that
// the count stays the same from one step to the next but at a power of two (the blocks divide each
// token's tiles among themselves on the device, the last splits taking what is left, or nothing).
// Measured on an H100: with the ring, 32,768 keys took 66-67 us in 64 splits of 512 keys (512 blocks, all
// at once) against 74-75 in 128; with rows loaded into registers 128-129 against 138-140 (so fewer, longer
// splits once the blocks fit the GPU at once). With an earlier layout of this kernel (values laid out as
// the keys, three blocks an SM), decode after 4096 tokens took 0.0041 s a token with 128 splits of one
// tile against 0.0037 with 64 of two: slices of one tile merge more than they save.
int decode_splits(int n_pairs, int n_keys) {
    const int wanted = (decode_blocks * decode_heads + n_pairs - 1) / n_pairs;
    const int tiles = static_cast<int>(std::bit_ceil(static_cast<unsigned>((n_keys + decode_keys - 1) / decode_keys)));
    return std::max(1, std::min({std::max(wanted, tiles / split_most_tiles), max_splits, tiles / 2}));
}

}  // namespace

std::size_t attention_scratch_bytes(int n_tokens, int n_head, int head_dim, int n_ctx) {
    if (n_tokens >= prompt_min_tokens) return 0;
    const int n_splits = decode_splits(n_tokens * n_head, n_ctx);
    if (n_splits == 1) return 0;
    const auto pairs = static_cast<std::size_t>(n_tokens) * n_head;
    return (arrival_slots(n_head) + pairs * n_splits * partial_stride(head_dim)) * sizeof(float);
}

int attention_variant(int n_tokens, int n_head, int n_keys, const KvRows& cache) {
    return 2 * decode_splits(n_tokens * n_head, n_keys) + (n_keys > cache.near_rows ? 1 : 0);
}

bool attention_on_tensor_cores(KvType kv_type, int head_dim) {
    return kv_type == KvType::f16 && tensor_attention_supported(head_dim);
}

bool attention_writes_int8(int n_tokens, int head_dim) {
    return n_tokens < prompt_min_tokens && head_dim % act_block == 0;
}

bool attention_ropes(int n_tokens) { return n_tokens == 1; }

void attention(float* out, const float* q, const KvRows& cache, KvType kv_type, int n_tokens, const int* positions,
               int n_head, int n_head_kv, int head_dim, int n_keys, float* scratch, const Stream& stream,
               float* int8_out, const RopeFirst* rope) {
    if (n_tokens == 0) return;
    if (rope && !attention_ropes(n_tokens))
        throw Error("attention: RopeFirst serves one token's decode, not a pass of " + std::to_string(n_tokens) +
                    " tokens, whose queries read each other's new keys: rope_store_kv first");
    if (rope && !(rope->k && rope->v && rope->inv_freq))
        throw Error("attention: RopeFirst needs the token's k, v and the inverse frequencies");
    if (int8_out && !attention_writes_int8(n_tokens, head_dim))
        throw Error("attention: a pass of " + std::to_string(n_tokens) + " tokens with head_dim " +
                    std::to_string(head_dim) +
                    " cannot be written as int8 activations (decode only, head_dim a multiple of 32)");
    if (head_dim > max_head_dim || n_head % n_head_kv != 0)
        throw Error("attention: head_dim " + std::to_string(head_dim) + " with " + std::to_string(n_head) + "/" +
                    std::to_string(n_head_kv) +
                    " heads is not supported (head_dim <= 256, n_head a multiple of n_head_kv)");
    const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
    const bool f16 = kv_type == KvType::f16;
    if (n_tokens >= prompt_min_tokens) {
        if (n_keys > cache.near_rows)
            throw Error("attention: a prompt of " + std::to_string(n_tokens) + " tokens over " +
                        std::to_string(n_keys) + " keys of a cache with " + std::to_string(cache.near_rows) +
                        " rows in VRAM: stage the cache into VRAM first");
        const void *k_cache = cache.k, *v_cache = cache.v;
        if (attention_on_tensor_cores(kv_type, head_dim))
            attention_prompt_tensor(out, q, static_cast<const unsigned short*>(k_cache),
                                    static_cast<const unsigned short*>(v_cache), positions, n_tokens, n_head, n_head_kv,
                                    head_dim, scale, native(stream));
        else
            (f16 ? launch_prompt<unsigned short> : launch_prompt<float>)(out, q, k_cache, v_cache, positions, n_tokens,
                                                                         n_head, n_head_kv, head_dim, scale,
                                                                         native(stream));
        GPU_CHECK_LAUNCH();
        return;
    }
    const int n_pairs = n_tokens * n_head;
    const int n_splits = scratch ? decode_splits(n_pairs, n_keys) : 1;
    const bool far = n_keys > cache.near_rows;
    const auto launch = f16 ? (far ? launch_decode<unsigned short, true> : launch_decode<unsigned short, false>)
                            : (far ? launch_decode<float, true> : launch_decode<float, false>);
    const Int8Input q8 = int8_out ? int8_input(int8_out, n_tokens, n_head * head_dim) : Int8Input{};
    launch(out, scratch, q, cache, positions, n_tokens, n_head, n_head_kv, head_dim, scale, n_splits, q8,
           rope ? *rope : RopeFirst{}, native(stream));
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu

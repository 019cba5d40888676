// The allocation hooks' hot path. It is C, not Rust, for two things stable Rust cannot say:
// - an initial-exec TLS countdown (one `fs:`-relative load and store per call; a Rust
//   `thread_local!` in a cdylib goes through `__tls_get_addr`), and
// - `__builtin_frame_address(0)`: this file is built with frame pointers, so every hook has a
//   frame whose saved return address is its caller's. The frame-pointer walk starts there and
//   keeps the direct caller of malloc or `operator new` (libstdc++'s own `operator new` has no
//   frame, so interposing it is what names the C++ caller).
// The exported symbols are Rust naked trampolines (`src/hooks.rs`) that jump here: rustc's
// version script exports only Rust symbols from a cdylib. Everything slow is Rust (`lh_*`).

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

#define HIDDEN __attribute__((visibility("hidden")))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

// Per-thread state, shared with Rust as `ThreadState` (same layout).
struct lh_thread {
    int64_t countdown; // bytes until the next sample; <= 0 means "take the slow path"
    uint64_t rng;      // 0 until the thread's first slow path
    uintptr_t stack_hi; // upper bound of the frame-pointer walk, 0 = unknown
    uint32_t busy;     // inside leakhound's own code: pass through, never recurse
    uint32_t helper;   // the tracker's own thread: never tracked
};

static __thread struct lh_thread lh_tls __attribute__((tls_model("initial-exec")));

// The sampled-address filter (a bitmap, see `src/table.rs`), swapped by Rust; NULL = inactive.
HIDDEN uint64_t *volatile lh_filter;
#define FILTER_BITS 23

// Rust's slow paths.
extern void lh_slow(void *ptr, size_t size, void *frame, struct lh_thread *t, uint64_t birth);
extern int lh_forget(void *ptr, uint64_t *birth);
extern void *lh_real(int which);

HIDDEN struct lh_thread *lh_thread_self(void) { return &lh_tls; }

static inline int maybe_sampled(const void *p) {
    uint64_t *f = __atomic_load_n(&lh_filter, __ATOMIC_ACQUIRE);
    if (f == NULL || p == NULL) return 0;
    uint64_t h = ((uint64_t)(uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> (64 - FILTER_BITS);
    return (__atomic_load_n(&f[h >> 6], __ATOMIC_RELAXED) >> (h & 63)) & 1;
}

// Counts `size` against this thread's countdown; the slow path decides whether it is a sample.
// A failed allocation counts nothing.
static inline void account(void *p, size_t size, void *frame, uint64_t birth) {
    if (p == NULL) return;
    struct lh_thread *t = &lh_tls;
    if (__builtin_expect(size < (uint64_t)INT64_MAX && (int64_t)size < t->countdown, 1)) {
        t->countdown -= (int64_t)size;
        return;
    }
    if (!t->busy) {
        t->busy = 1;
        lh_slow(p, size, frame, t, birth);
        t->busy = 0;
    }
}

// Forget a sampled pointer before the allocator can hand its address out again.
static inline uint64_t forget(void *p) {
    uint64_t birth = 0;
    if (UNLIKELY(maybe_sampled(p))) {
        struct lh_thread *t = &lh_tls;
        if (!t->busy) {
            t->busy = 1;
            lh_forget(p, &birth);
            t->busy = 0;
        }
    }
    return birth;
}

HIDDEN void *lh_malloc(size_t size) {
    void *p = __libc_malloc(size);
    account(p, size, __builtin_frame_address(0), 0);
    return p;
}

HIDDEN void lh_free(void *p) {
    forget(p);
    __libc_free(p);
}

HIDDEN void *lh_calloc(size_t n, size_t size) {
    void *p = __libc_calloc(n, size);
    size_t total;
    if (!__builtin_mul_overflow(n, size, &total)) account(p, total, __builtin_frame_address(0), 0);
    return p;
}

HIDDEN void *lh_realloc(void *old, size_t size) {
    if (old == NULL) {
        void *p = __libc_malloc(size);
        account(p, size, __builtin_frame_address(0), 0);
        return p;
    }
    // A sampled block is forgotten before glibc may free it. If realloc then fails, the old
    // block lives on unsampled: its bytes are under-counted until it is freed, never over-counted.
    uint64_t birth = forget(old);
    void *p = __libc_realloc(old, size);
    if (size != 0) account(p, size, __builtin_frame_address(0), birth);
    return p;
}

HIDDEN void *lh_reallocarray(void *old, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    uint64_t birth = old ? forget(old) : 0;
    void *p = __libc_realloc(old, total);
    if (total != 0 || old == NULL) account(p, total, __builtin_frame_address(0), birth);
    return p;
}

HIDDEN void *lh_memalign(size_t align, size_t size) {
    void *p = __libc_memalign(align, size);
    account(p, size, __builtin_frame_address(0), 0);
    return p;
}

HIDDEN void *lh_aligned_alloc(size_t align, size_t size) {
    void *p = __libc_memalign(align, size);
    account(p, size, __builtin_frame_address(0), 0);
    return p;
}

HIDDEN int lh_posix_memalign(void **out, size_t align, size_t size) {
    if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0 || align == 0) return EINVAL;
    void *p = __libc_memalign(align, size);
    if (p == NULL) return ENOMEM;
    account(p, size, __builtin_frame_address(0), 0);
    *out = p;
    return 0;
}

HIDDEN void *lh_valloc(size_t size) {
    void *p = __libc_valloc(size);
    account(p, size, __builtin_frame_address(0), 0);
    return p;
}

HIDDEN void *lh_pvalloc(size_t size) {
    void *p = __libc_pvalloc(size);
    account(p, size, __builtin_frame_address(0), 0);
    return p;
}

HIDDEN size_t lh_malloc_usable_size(void *p) {
    size_t (*real)(void *) = (size_t(*)(void *))lh_real(0);
    return real ? real(p) : 0;
}

// C++ allocation. A failed `operator new` goes to libstdc++'s own, which runs the new-handler
// and throws `std::bad_alloc` (C cannot throw).
HIDDEN void *lh_new(size_t size) {
    void *p = __libc_malloc(size);
    if (UNLIKELY(p == NULL)) {
        void *(*real)(size_t) = (void *(*)(size_t))lh_real(1);
        return real ? real(size) : NULL;
    }
    account(p, size, __builtin_frame_address(0), 0);
    return p;
}

HIDDEN void *lh_new_nothrow(size_t size, const void *tag) {
    (void)tag;
    void *p = __libc_malloc(size);
    account(p, size, __builtin_frame_address(0), 0);
    return p;
}

HIDDEN void *lh_new_aligned(size_t size, size_t align) {
    void *p = __libc_memalign(align, size ? size : 1);
    if (UNLIKELY(p == NULL)) {
        void *(*real)(size_t, size_t) = (void *(*)(size_t, size_t))lh_real(2);
        return real ? real(size, align) : NULL;
    }
    account(p, size, __builtin_frame_address(0), 0);
    return p;
}

HIDDEN void *lh_new_aligned_nothrow(size_t size, size_t align, const void *tag) {
    (void)tag;
    void *p = __libc_memalign(align, size ? size : 1);
    account(p, size, __builtin_frame_address(0), 0);
    return p;
}

// Every `operator delete` variant: the size, alignment and nothrow tag change nothing here.
HIDDEN void lh_delete(void *p) {
    forget(p);
    __libc_free(p);
}

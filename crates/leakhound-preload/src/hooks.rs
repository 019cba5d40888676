//! The exported allocation functions: each jumps to its C implementation in `hooks.c`.
//!
//! A jump, not a call, so the C hook's frame sits directly on the caller's: its saved return
//! address is the caller's, and the frame-pointer walk that starts there misses no one. They
//! are naked functions because rustc exports only Rust symbols from a cdylib.

use std::arch::naked_asm;

unsafe extern "C" {
    fn lh_malloc();
    fn lh_free();
    fn lh_calloc();
    fn lh_realloc();
    fn lh_reallocarray();
    fn lh_memalign();
    fn lh_aligned_alloc();
    fn lh_posix_memalign();
    fn lh_valloc();
    fn lh_pvalloc();
    fn lh_malloc_usable_size();
    fn lh_new();
    fn lh_new_nothrow();
    fn lh_new_aligned();
    fn lh_new_aligned_nothrow();
    fn lh_delete();
}

macro_rules! trampolines {
    ($($export:ident => $target:ident;)*) => {
        $(
            #[unsafe(no_mangle)]
            #[unsafe(naked)]
            pub extern "C" fn $export() {
                naked_asm!("jmp {}", sym $target)
            }
        )*
    };
}

trampolines! {
    malloc => lh_malloc;
    free => lh_free;
    calloc => lh_calloc;
    realloc => lh_realloc;
    reallocarray => lh_reallocarray;
    memalign => lh_memalign;
    aligned_alloc => lh_aligned_alloc;
    posix_memalign => lh_posix_memalign;
    valloc => lh_valloc;
    pvalloc => lh_pvalloc;
    malloc_usable_size => lh_malloc_usable_size;
    // operator new(size_t), new[](size_t), their nothrow and aligned forms.
    _Znwm => lh_new;
    _Znam => lh_new;
    _ZnwmRKSt9nothrow_t => lh_new_nothrow;
    _ZnamRKSt9nothrow_t => lh_new_nothrow;
    _ZnwmSt11align_val_t => lh_new_aligned;
    _ZnamSt11align_val_t => lh_new_aligned;
    _ZnwmSt11align_val_tRKSt9nothrow_t => lh_new_aligned_nothrow;
    _ZnamSt11align_val_tRKSt9nothrow_t => lh_new_aligned_nothrow;
    // operator delete and delete[]: plain, sized, nothrow, aligned, and their mixes.
    _ZdlPv => lh_delete;
    _ZdaPv => lh_delete;
    _ZdlPvm => lh_delete;
    _ZdaPvm => lh_delete;
    _ZdlPvRKSt9nothrow_t => lh_delete;
    _ZdaPvRKSt9nothrow_t => lh_delete;
    _ZdlPvSt11align_val_t => lh_delete;
    _ZdaPvSt11align_val_t => lh_delete;
    _ZdlPvmSt11align_val_t => lh_delete;
    _ZdaPvmSt11align_val_t => lh_delete;
    _ZdlPvSt11align_val_tRKSt9nothrow_t => lh_delete;
    _ZdaPvSt11align_val_tRKSt9nothrow_t => lh_delete;
}

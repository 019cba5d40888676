//! One step of CFI unwinding: the caller's registers from a native frame's, by the `.eh_frame`
//! rules of the binary the frame's code is in (gimli).
//!
//! glibc uses rbp as a general register, so a thread blocked in it has no frame-pointer chain
//! to follow; the call frame information of every function (compilers emit it for C and C++
//! alike, for exceptions) says where each frame saved its caller's registers. V8's builtins
//! and JIT code have none: there the walk follows V8's frame pointers instead (`stack`).

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EndianSlice, Evaluation, EvaluationResult,
    LittleEndian, Location, Register, RegisterRule, UnwindContext, UnwindSection, Value,
};

use crate::symbols::{EhSections, Image};

/// DWARF numbers of the x86-64 registers the walk tracks (psABI): 0–15 the general
/// registers, 16 the return address (rip).
pub(crate) const RBP: u16 = 6;
pub(crate) const RSP: u16 = 7;
pub(crate) const RIP: u16 = 16;

/// The registers of one frame; `None` where unknown (not restored by the callee's CFI).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Regs(pub(crate) [Option<u64>; 17]);

impl Regs {
    pub(crate) fn get(&self, r: u16) -> Option<u64> {
        self.0.get(usize::from(r)).copied().flatten()
    }

    pub(crate) fn set(&mut self, r: u16, value: Option<u64>) {
        if let Some(slot) = self.0.get_mut(usize::from(r)) {
            *slot = value;
        }
    }
}

/// The process's memory as the walk reads it: the core, and for what the core left out of
/// file mappings, the files.
pub(crate) trait Memory {
    /// `len` bytes at `addr`, `None` if any is absent.
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]>;

    /// A little-endian word at `addr`.
    fn read_u64(&self, addr: u64) -> Option<u64> {
        Some(u64::from_le_bytes(self.read(addr, 8)?.try_into().ok()?))
    }
}

/// Why a native frame could not be unwound.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The binary has no unwind information for the address (V8's builtins and JIT code).
    NoCfi,
    /// The rules say the caller's return address is undefined: the outermost frame
    /// (`_start`, `clone3`).
    Outermost,
    /// Anything else, said in words.
    Failed(String),
}

/// Reusable state for unwinding (gimli's row-evaluation context).
pub(crate) struct Unwinder {
    ctx: Box<UnwindContext<usize>>,
}

type Slice<'d> = EndianSlice<'d, LittleEndian>;

/// The longest DWARF expression evaluation allowed (they are a few operations in practice).
const MAX_EXPRESSION_STEPS: u32 = 1000;

impl Unwinder {
    pub(crate) fn new() -> Unwinder {
        Unwinder {
            ctx: Box::new(UnwindContext::new()),
        }
    }

    /// The caller's registers. `vaddr` is the link-time address to look the rules up at (the
    /// return address minus one for a caller's frame, so that a call at the end of a function
    /// is looked up in it); `regs` are the frame's registers, with its real rip and rsp.
    /// Returns also whether the frame is a signal trampoline (its caller's rip is exact, not
    /// a return address).
    pub(crate) fn step(
        &mut self,
        image: &Image<'_>,
        vaddr: u64,
        regs: &Regs,
        memory: &dyn Memory,
    ) -> Result<(Regs, bool), Stop> {
        let Some(eh) = &image.eh else {
            return Err(Stop::NoCfi);
        };
        let Some((frame, bases)) = sections(image, eh) else {
            return Err(Stop::NoCfi);
        };
        let fde = fde_for(&frame, &bases, eh, image, vaddr).map_err(|e| match e {
            gimli::Error::NoUnwindInfoForAddress => Stop::NoCfi,
            e => Stop::Failed(format!("bad unwind information: {e}")),
        })?;
        let signal = fde.is_signal_trampoline();
        let row = fde
            .unwind_info_for_address(&frame, &bases, &mut self.ctx, vaddr)
            .map_err(|e| Stop::Failed(format!("bad unwind information: {e}")))?;
        let cfa = match row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => regs
                .get(register.0)
                .and_then(|v| v.checked_add_signed(*offset))
                .ok_or_else(|| {
                    Stop::Failed(format!(
                        "the frame address needs register {}, which is unknown",
                        register.0
                    ))
                })?,
            CfaRule::Expression(e) => {
                let expr = e
                    .get(&frame)
                    .map_err(|e| Stop::Failed(format!("bad unwind expression: {e}")))?;
                match evaluate(expr.0, regs, memory, None) {
                    Some(Computed::Address(a)) | Some(Computed::Value(a)) => a,
                    None => {
                        return Err(Stop::Failed(
                            "cannot evaluate the frame address's expression".to_owned(),
                        ));
                    }
                }
            }
        };
        let mut caller = Regs::default();
        for r in 0..=RIP {
            let rule = row.register(Register(r));
            let value = match rule {
                // Without a rule (gimli shows none as undefined), callee-saved registers keep
                // their value: compilers only describe the ones a function changes. The
                // others are lost across a call.
                RegisterRule::Undefined if is_callee_saved(r) => regs.get(r),
                RegisterRule::Undefined => None,
                RegisterRule::SameValue => regs.get(r),
                RegisterRule::Offset(n) => {
                    cfa.checked_add_signed(n).and_then(|a| memory.read_u64(a))
                }
                RegisterRule::ValOffset(n) => cfa.checked_add_signed(n),
                RegisterRule::Register(other) => regs.get(other.0),
                RegisterRule::Expression(e) => {
                    let expr = e.get(&frame).ok();
                    match expr.and_then(|x| evaluate(x.0, regs, memory, Some(cfa))) {
                        Some(Computed::Address(a)) => memory.read_u64(a),
                        Some(Computed::Value(v)) => Some(v),
                        None => None,
                    }
                }
                RegisterRule::ValExpression(e) => {
                    let expr = e.get(&frame).ok();
                    match expr.and_then(|x| evaluate(x.0, regs, memory, Some(cfa))) {
                        Some(Computed::Address(v) | Computed::Value(v)) => Some(v),
                        None => None,
                    }
                }
                RegisterRule::Constant(v) => Some(v),
                _ => None,
            };
            caller.set(r, value);
        }
        // The return address is what the return-address column says; its rule is usually
        // `Offset(-8)`: the word the call pushed.
        let ra_column = fde.cie().return_address_register().0;
        let ra = match row.register(Register(ra_column)) {
            RegisterRule::Undefined => return Err(Stop::Outermost),
            _ => caller.get(ra_column),
        };
        caller.set(RIP, ra);
        caller.set(RSP, Some(cfa));
        Ok((caller, signal))
    }
}

/// rbx, rbp, r12–r15: preserved across calls by the psABI.
fn is_callee_saved(r: u16) -> bool {
    matches!(r, 3 | RBP | 12..=15)
}

fn sections<'d>(
    image: &'d Image<'_>,
    eh: &EhSections,
) -> Option<(EhFrame<Slice<'d>>, BaseAddresses)> {
    let data = image.data();
    let frame = EhFrame::new(data.get(eh.eh_frame.1.clone())?, LittleEndian);
    let mut bases = BaseAddresses::default()
        .set_eh_frame(eh.eh_frame.0)
        .set_text(eh.text);
    if let Some((addr, _)) = &eh.eh_frame_hdr {
        bases = bases.set_eh_frame_hdr(*addr);
    }
    Some((frame, bases))
}

/// The FDE that covers `vaddr`: by `.eh_frame_hdr`'s sorted table (a binary search), or, in a
/// file without one, by reading the FDEs in order.
fn fde_for<'d>(
    frame: &EhFrame<Slice<'d>>,
    bases: &BaseAddresses,
    eh: &EhSections,
    image: &'d Image<'_>,
    vaddr: u64,
) -> gimli::Result<gimli::FrameDescriptionEntry<Slice<'d>>> {
    if let Some((_, range)) = &eh.eh_frame_hdr
        && let Some(bytes) = image.data().get(range.clone())
    {
        let hdr = EhFrameHdr::new(bytes, LittleEndian).parse(bases, 8)?;
        if let Some(table) = hdr.table() {
            return table.fde_for_address(frame, bases, vaddr, EhFrame::cie_from_offset);
        }
    }
    frame.fde_for_address(bases, vaddr, EhFrame::cie_from_offset)
}

enum Computed {
    Address(u64),
    Value(u64),
}

/// Evaluates a CFI expression (glibc's signal trampoline and PLT entries have them), with
/// `cfa` pushed first for register rules.
fn evaluate(
    bytes: Slice<'_>,
    regs: &Regs,
    memory: &dyn Memory,
    cfa: Option<u64>,
) -> Option<Computed> {
    let encoding = gimli::Encoding {
        address_size: 8,
        format: gimli::Format::Dwarf32,
        version: 4,
    };
    let mut eval = Evaluation::new(bytes, encoding);
    eval.set_max_iterations(MAX_EXPRESSION_STEPS);
    if let Some(cfa) = cfa {
        eval.set_initial_value(cfa);
    }
    let mut state = eval.evaluate().ok()?;
    loop {
        state = match state {
            EvaluationResult::Complete => break,
            EvaluationResult::RequiresRegister { register, .. } => {
                let v = regs.get(register.0)?;
                eval.resume_with_register(Value::Generic(v)).ok()?
            }
            EvaluationResult::RequiresMemory { address, size, .. } => {
                let word = memory.read_u64(address)?;
                let v = match size {
                    8 => word,
                    1..=7 => word & ((1u64 << (u32::from(size) * 8)) - 1),
                    _ => return None,
                };
                eval.resume_with_memory(Value::Generic(v)).ok()?
            }
            _ => return None,
        };
    }
    let pieces = eval.as_result();
    match pieces.first()?.location {
        Location::Address { address } => Some(Computed::Address(address)),
        Location::Value { value } => Some(Computed::Value(value.to_u64(!0).ok()?)),
        Location::Register { register } => regs.get(register.0).map(Computed::Value),
        _ => None,
    }
}

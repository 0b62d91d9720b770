"""A software prefetch hint for jitted kernels (LLVM's ``llvm.prefetch``).

The kernel reads ahead in its command batch and asks the CPU to start loading the id-table
bucket and the order slot that a coming cancel or amend will touch, so those cache misses
overlap with the work on the commands before it. A prefetch is only a hint: it never
faults, never changes memory, and a stale address (the book changed in between) just
costs a useless load — the results are the same with or without it.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic


@intrinsic
def _prefetch(typingctx: Any, arr: Any, index: Any) -> Any:
    """Prefetch the element ``arr[index]`` of a 1-d array for reading (no bounds check:
    the caller passes an index inside the array; a prefetch of any address is harmless)."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(index, types.Integer):
        return None
    sig = types.void(arr, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, [args[1]], wraparound=False, boundscheck=False
        )
        i32 = ir.IntType(32)
        ptr_ty = ir.PointerType(ir.IntType(8))
        fnty = ir.FunctionType(ir.VoidType(), [ptr_ty, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read (0), high temporal locality (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, ptr_ty), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


# Called from jitted code as prefetch(arr, index) (typed Any: the intrinsic's Python
# signature includes the typing context).
prefetch: Any = _prefetch

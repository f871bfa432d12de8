"""Embedding lookup: rows of a table picked by integer ids."""
from ..backend import get_array_module, scatter_add


def embedding_forward(ids, table):
    # ids (B, T) integers, table (V, C) -> out (B, T, C)
    return table[ids], {"ids": ids, "table_shape": table.shape}


def embedding_backward(dout, cache, padding_idx=None):
    # dout (B, T, C) -> dtable (V, C): each id's row gets the sum of its positions' gradients.
    # padding_idx: that row gets no gradient, as torch.nn.Embedding(padding_idx=...) does.
    xp = get_array_module(dout)
    ids, (V, C) = cache["ids"], cache["table_shape"]
    dtable = xp.zeros((V, C), dtype=dout.dtype)
    scatter_add(dtable, ids.reshape(-1), dout.reshape(-1, C))
    if padding_idx is not None:
        dtable[padding_idx] = 0
    return dtable

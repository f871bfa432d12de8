"""minibert: BERT from scratch in NumPy/CuPy, forward and backward by hand, with the bottleneck
adapters of Houlsby et al. (2019).

The modules at the top of the package are the library a learner reads, in reading order: the
array switch (backend), the ops, config, module, model, heads, adapters, adapter files,
accounting, parameter names, pretrained weights, named models, the tokenizer, the optimizer,
the trainer, gradient checks and value checks. They import nothing from the folders beside
them: speed/ (how NumPy work is shared over cores, switched on by `minibert.speed.enable()`),
data/ (task readers, your own files), qa/ (SQuAD), runs/ (train, eval, predict) and lab/
(analyses, sweeps, bench); cli.py is the `minibert` command.
"""
__version__ = "0.1.0"        # setup.cfg reads it from here

from .adapter_files import load_adapters, save_adapters
from .adapters import add_adapters, set_active_adapters
from .backend import get_device, use
from .config import BertConfig
from .heads import QuestionAnsweringHead, SequenceClassificationHead
from .model import BertModel
from .tokenizer import Tokenizer

__all__ = ["__version__", "BertConfig", "BertModel", "QuestionAnsweringHead",
           "SequenceClassificationHead", "Tokenizer", "add_adapters", "get_device",
           "load_adapters", "save_adapters", "set_active_adapters", "use"]

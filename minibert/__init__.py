"""minibert: BERT from scratch in NumPy/CuPy, forward and backward by hand, with the bottleneck
adapters of Houlsby et al. (2019)."""
from .adapter_files import load_adapters, save_adapters
from .adapters import add_adapters, set_active_adapters
from .backend import get_device, use
from .config import BertConfig
from .heads import QuestionAnsweringHead, SequenceClassificationHead
from .model import BertModel
from .tokenizer import Tokenizer

__all__ = ["BertConfig", "BertModel", "SequenceClassificationHead", "Tokenizer", "add_adapters",
           "get_device", "load_adapters", "save_adapters", "set_active_adapters", "use"]

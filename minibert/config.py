"""BertConfig: the fields of a Hugging Face BERT config.json, checked on the way in."""
import dataclasses
import json


@dataclasses.dataclass(init=False)
class BertConfig:
    """The BERT fields of a config.json, as keywords: `BertConfig(**json.load(f))`. Like
    transformers' BertConfig it takes every key a Hugging Face config.json carries: those that
    are not BERT fields here (model_type, architectures, transformers_version, torch_dtype,
    use_cache, ...) are kept in `extra`, written back by `to_dict` and change nothing; equality
    compares the BERT fields only."""
    vocab_size: int = 30522
    hidden_size: int = 768            # C
    num_hidden_layers: int = 12       # L
    num_attention_heads: int = 12     # H
    intermediate_size: int = 3072     # F
    hidden_act: str = "gelu"          # "gelu" is the exact erf form; "gelu_new"/"gelu_pytorch_tanh" the tanh form
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    extra: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def __init__(self, **fields):     # the dataclass's own __init__ would refuse unknown keys
        for field in dataclasses.fields(self):
            if field.init:
                setattr(self, field.name, fields.pop(field.name, field.default))
        self.extra = fields
        self.__post_init__()

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BertConfig.{name}: expected a positive integer, found {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig: hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in GELU_FORMS:
            raise ValueError(f"BertConfig.hidden_act: expected one of {sorted(GELU_FORMS)}, "
                             f"found {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"BertConfig.{name}: expected a probability in [0, 1), "
                                 f"found {getattr(self, name)!r}")
        # the one common key that would change the model's math: minibert has learned absolute
        # positions only, so a relative-position checkpoint must not load as if it had them
        position = self.extra.get("position_embedding_type", "absolute")
        if position != "absolute":
            raise ValueError(f"BertConfig.position_embedding_type: expected 'absolute', "
                             f"found {position!r}")

    @property
    def head_size(self):              # D = C / H
        return self.hidden_size // self.num_attention_heads

    @property
    def gelu_form(self):
        return GELU_FORMS[self.hidden_act]

    @classmethod
    def from_dict(cls, fields):
        return cls(**fields)

    @classmethod
    def from_json_file(cls, path):
        try:
            with open(path, encoding="utf-8") as f:
                fields = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
        if not isinstance(fields, dict):
            raise ValueError(f"{path}: expected a JSON object, found {type(fields).__name__}")
        try:
            return cls.from_dict(fields)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None

    def to_dict(self):
        """A config.json's fields: the extra keys as read, then what minibert writes, a BertModel."""
        bert = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        return {**self.extra, "model_type": "bert", "architectures": ["BertModel"], **bert}


# hidden_act names used by Hugging Face checkpoints -> the GELU form minibert computes
GELU_FORMS = {"gelu": "erf", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}


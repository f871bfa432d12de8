"""Gradients of the real pretrained model against torch autograd, tensor by tensor, the way
llm.c checks its backward against PyTorch. Needs the `reference` extra (torch, transformers)."""
import numpy as np
import pytest

import minibert
from minibert import named_models

from closeness import assert_close

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXTS = ["the quick brown fox jumps over the lazy dog", "a short one",
         "adapters keep the pretrained weights frozen and still learn the task"]
LABELS = np.array([1, 0, 2])


@pytest.fixture(scope="module", params=["cls", "mean"])
def gradients(request):
    """(our gradients, torch's gradients, our loss, torch's loss) for one classification loss
    on a padded batch through minilm-l6 + a linear head, dropout off; the head on the pooled
    [CLS] or on the mean of the tokens (sentence-transformers' masked mean, written in torch)."""
    pooling = request.param
    folder = named_models.folder_of("minilm-l6")
    enc = minibert.Tokenizer.from_pretrained(folder)(TEXTS)
    model = minibert.BertModel.from_pretrained(folder)
    head = minibert.SequenceClassificationHead(model.config.hidden_size, 3, seed=0,
                                               pooling=pooling)
    seq, pooled = model.forward(**enc)
    _, loss = head.forward_batch(seq, pooled, {**enc, "labels": LABELS})
    model.backward(*head.backward_batch())
    ours = {**model.grads, **head.grads}

    torch.manual_seed(0)
    reference = transformers.BertModel.from_pretrained(str(folder), attn_implementation="eager")
    reference.eval()
    classifier = torch.nn.Linear(model.config.hidden_size, 3)
    with torch.no_grad():
        classifier.weight.copy_(torch.from_numpy(head.params["classifier.weight"]))
        classifier.bias.copy_(torch.from_numpy(head.params["classifier.bias"]))
    out = reference(**{k: torch.from_numpy(v) for k, v in enc.items()})
    if pooling == "cls":
        feature = out.pooler_output
    else:
        mask = torch.from_numpy(enc["attention_mask"]).unsqueeze(-1).float()
        feature = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    torch_loss = torch.nn.functional.cross_entropy(classifier(feature), torch.from_numpy(LABELS))
    torch_loss.backward()
    # the pooler gets no gradient when the head reads the mean
    theirs = {n: p.grad.numpy() for n, p in reference.named_parameters() if p.grad is not None}
    theirs.update({"classifier." + n: p.grad.numpy() for n, p in classifier.named_parameters()})
    return ours, theirs, float(loss), torch_loss.item()


def test_loss_matches(gradients):
    _, _, loss, torch_loss = gradients
    # one float32 scalar, its own scale: the forward's ~40 roundings of 1.2e-7 and the mean's
    assert loss == pytest.approx(torch_loss, rel=1e-5)


def test_every_gradient_matches_torch_autograd(gradients):
    ours, theirs, _, _ = gradients
    unused = {n for n in ours if n not in theirs}
    assert unused <= {"pooler.dense.weight", "pooler.dense.bias"}
    assert not any(ours[n].any() for n in unused)
    assert set(ours) - unused == set(theirs)
    # the key bias shifts all scores of a softmax row equally: its true gradient is zero, and
    # both implementations return float32 round-off (~1e-10) that no relative error can compare
    key_biases = {n for n in theirs if n.endswith("attention.self.key.bias")}
    for name in key_biases:
        assert np.linalg.norm(ours[name]) < 1e-7 and np.linalg.norm(theirs[name]) < 1e-7, name
    # float32 on both sides: hundreds of roundings of 1.2e-7 through six layers forward and
    # back, and sums over every position that cancel in the bias and LayerNorm gradients
    # (measured worst 2.1e-5 on one thread, 2.4e-5 on two: encoder.layer.5.output.LayerNorm.bias)
    for name in sorted(set(theirs) - key_biases):
        assert_close(ours[name], theirs[name], tol=1e-4, name=name)

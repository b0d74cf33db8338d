"""Evidence from logits or per-token losses (sublora.bounds.evidence): the scorer's numbers, for any model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sublora.bounds.evaluate import score_documents, score_token_blocks
from sublora.bounds.inference import predictor
from sublora.bounds.evidence import Scores, document_evidence, score_logits, score_nll, target_rank, token_evidence
from sublora.core.errors import BoundError

from tiny_scoring import EOT, T, V, tiny_scoring_model
ALPHAS = (0.01, 0.1, 0.5)


@pytest.fixture(scope="module")
def model():
    return tiny_scoring_model()


def _blocks(tokens: np.ndarray, indices) -> torch.Tensor:
    """The aligned blocks (inputs and targets) the scorer reads: (B, T + 1)."""
    return torch.from_numpy(np.asarray(tokens[np.asarray(indices)[:, None] * T + np.arange(T + 1)], dtype=np.int64))


def _logits(model, window: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():  # the scorer's forward: the merged network (sublora.bounds.inference)
        return predictor(model)(window[:, :-1])  # (B, T, V)


def _same_token_evidence(a, b) -> None:
    assert (a.n, a.block_size, a.sampled) == (b.n, b.block_size, b.sampled)
    assert np.array_equal(a.block_indices, b.block_indices)
    for name in ("loss", "xi2", "loss_extremes"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert sorted(a.topk_error) == sorted(b.topk_error)
    for k in a.topk_error:
        assert np.array_equal(a.topk_error[k], b.topk_error[k]), k


def test_token_evidence_from_logits_is_the_scorers(model):
    """Every block once: the same numbers, bit for bit, though the scorer batches differently."""
    tokens = np.random.default_rng(0).integers(0, V, size=6 * T + 3)
    expected = score_token_blocks(model, tokens, T, ALPHAS, max_blocks=None, seed=0, batch_size=4, topk=(1, 5))
    window = _blocks(tokens, range(6))
    got = token_evidence(score_logits(_logits(model, window), window[:, 1:], ALPHAS, topk=(1, 5)))
    _same_token_evidence(expected, got)
    halves = [score_logits(_logits(model, window[i : i + 3]), window[i : i + 3, 1:], ALPHAS, topk=(1, 5)) for i in (0, 3)]
    _same_token_evidence(expected, token_evidence(halves))  # batch by batch, joined


def test_sampled_blocks_and_the_tokenizer_vocabulary(model):
    """Blocks drawn with replacement, V restricted to the first 200 ids: as the scorer with vocab=200."""
    tokens = np.random.default_rng(1).integers(0, 200, size=40 * T + 1)
    expected = score_token_blocks(model, tokens, T, ALPHAS, max_blocks=5, seed=3, topk=(1,), vocab=200)
    window = _blocks(tokens, expected.block_indices)
    scores = score_logits(_logits(model, window), window[:, 1:], ALPHAS, topk=(1,), vocab=200)
    assert scores.vocab == 200
    got = token_evidence(scores, block_indices=expected.block_indices, total_blocks=40)
    _same_token_evidence(expected, got)


def test_document_evidence_from_padded_rows_is_the_scorers(model):
    """Documents shorter than a block, each predicted from an end-of-text token, padded into one batch."""
    rng = np.random.default_rng(2)
    lengths = [5, T, 9]
    docs = [np.concatenate([rng.integers(0, EOT, size=n - 1), [EOT]]) for n in lengths]
    tokens = np.concatenate(docs)
    ends = np.cumsum(lengths)
    expected = score_documents(model, tokens, ends - lengths, ends, EOT, T, T, ALPHAS, (1, 10), samples=6, seed=4)
    idx = expected.indices  # the sampled documents, some drawn twice: one row each
    inputs = torch.zeros(len(idx), T, dtype=torch.long)
    targets = torch.full((len(idx), T), -100)  # padding: anything, masked out
    for row, d in enumerate(idx):
        inputs[row, : lengths[d]] = torch.from_numpy(np.concatenate([[EOT], docs[d][:-1]]))
        targets[row, : lengths[d]] = torch.from_numpy(docs[d])
    with torch.no_grad():
        logits = model(inputs)
    scores = score_logits(logits, targets, ALPHAS, topk=(1, 10), mask=targets >= 0)
    assert list(scores.tokens) == [lengths[d] for d in idx]
    got = document_evidence(scores, N=3, indices=idx)
    assert (got.N, got.n, got.tokens_scored) == (expected.N, expected.n, expected.tokens_scored)
    assert np.array_equal(got.indices, expected.indices)
    assert np.allclose(got.bpd, expected.bpd, rtol=1e-5)
    for k in (1, 10):
        assert np.allclose(got.topk_error[k], expected.topk_error[k])
    assert np.allclose(got.loss_extremes, expected.loss_extremes, rtol=1e-5)


def test_a_classifier_is_one_token_per_unit():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 3.0]])
    y = torch.tensor([0, 1])
    s = score_logits(logits, y, (0.5,), topk=(1,))
    p = torch.softmax(logits.double(), -1)[torch.arange(2), y]
    assert np.allclose(s.loss[0], -np.log2(0.5 * p.numpy() + 0.5 / 3), rtol=1e-6)
    assert list(s.topk_error[1]) == [0.0, 1.0] and list(s.tokens) == [1, 1]
    ph = 0.5 * torch.softmax(logits.double(), -1) + 0.5 / 3
    entropy = -(ph * ph.log2()).sum(-1).numpy()
    xi = (entropy - s.loss[0]) / math.log2(3 / 0.5)
    assert np.allclose(s.xi2[0], xi**2, rtol=1e-5)


def test_tied_logits_do_not_favour_the_target():
    """A top-k hit means the target is among the k first ids of an order fixed before the target is seen
    (logit, then the lower id): with every logit equal, only id 0 is the first, whatever the target."""
    targets = torch.arange(5)
    s = score_logits(torch.zeros(5, 5), targets, (0.5,), topk=(1, 3))
    assert list(target_rank(torch.zeros(5, 5), targets)) == [0, 1, 2, 3, 4]
    assert list(s.topk_error[1]) == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert list(s.topk_error[3]) == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_target_rank_is_the_place_in_a_stable_sort():
    """bfloat16 logits tie often; the rank is the target's place when ids are sorted by logit, ties by id."""
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(400, 257, generator=gen) * 0.3).bfloat16().float()
    targets = torch.randint(0, 257, (400,), generator=gen)
    x, y = logits.numpy(), targets.numpy()
    order = [np.lexsort((np.arange(257), -row)) for row in x]  # by logit (descending), then by id
    expected = [int(np.flatnonzero(o == t)[0]) for o, t in zip(order, y)]
    ties = sum(int((row == row[t]).sum()) > 1 for row, t in zip(x, y))
    assert ties > 50  # the case this is about
    assert target_rank(logits, targets).tolist() == expected


def test_per_token_losses_give_the_same_loss_and_the_largest_xi2(model):
    tokens = np.random.default_rng(5).integers(0, V, size=3 * T + 1)
    window = _blocks(tokens, range(3))
    logits = _logits(model, window)
    from_logits = score_logits(logits, window[:, 1:], ALPHAS)
    nll = F.cross_entropy(logits.transpose(1, 2), window[:, 1:], reduction="none")  # (B, T) nats
    from_nll = score_nll(nll, ALPHAS, vocab=V)
    assert np.allclose(from_nll.loss, from_logits.loss, rtol=1e-5)
    assert np.allclose(from_nll.loss_extremes, from_logits.loss_extremes, rtol=1e-5)
    assert (from_nll.xi2 == 1.0).all() and (from_logits.xi2 <= 1.0).all() and from_nll.topk_error == {}
    probabilities = torch.exp(-nll)  # or the targets' probabilities, as an API would report them
    assert np.allclose(score_nll(-torch.log(probabilities), ALPHAS, V).loss, from_nll.loss, rtol=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda: score_logits(torch.zeros(2, 4, 10), torch.zeros(2, 4, dtype=torch.long), (0.1,), vocab=11), "exceeds"),
    (lambda: score_logits(torch.zeros(2, 4, 10), torch.zeros(2, 5, dtype=torch.long), (0.1,)), "shape"),
    (lambda: score_logits(torch.zeros(2, 10), torch.tensor([0, 10]), (0.1,)), r"\[0, 10\)"),
    (lambda: score_logits(torch.zeros(2, 10), torch.tensor([0, 1]), (0.0,)), "alpha"),
    (lambda: score_logits(torch.zeros(2, 3, 10), torch.zeros(2, 3, dtype=torch.long), (0.1,),
                          mask=torch.tensor([[1, 1, 0], [0, 0, 0]])), "at least one"),
    (lambda: score_nll(torch.tensor([[0.1, -1.0]]), (0.1,), 10), "non-negative"),
    (lambda: token_evidence(score_logits(torch.zeros(2, 3, 10), torch.zeros(2, 3, dtype=torch.long), (0.1,),
                                         mask=torch.tensor([[1, 1, 0], [1, 1, 1]]))), "same number"),
    (lambda: token_evidence(score_nll(torch.ones(2, 3), (0.1,), 10), block_indices=[0, 7], total_blocks=5), "block_indices"),
    (lambda: token_evidence(score_nll(torch.ones(2, 3), (0.1,), 10), total_blocks=5), "say which"),
    (lambda: document_evidence(score_nll(torch.ones(2, 3), (0.1,), 10), N=2, indices=[0, 2]), "indices"),
    (lambda: Scores.concat([score_nll(torch.ones(2, 3), (0.1,), 10), score_nll(torch.ones(2, 3), (0.2,), 10)]), "differ"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(BoundError, match=message):
        call()

"""The roofline's counting: the FLOPs of a training step counted at the ATen level equal the
products the model's shapes and T, K imply, written out by hand."""

import torch

from bench_algorithms import EP
from bench_models import PNet
from bench_runs.roofline import OpCounter, dispatch_seconds, measured_rate


def test_counted_flops_of_an_ep_step_equal_the_shapes_formula():
    """P net, one hidden layer (out o, hidden h, input d), batch B, fast path: the input drive once
    (2Bdh), 2 products per free or nudged step between output and hidden (2·2Boh each, T + K steps),
    then ΔEP: the input weight's (2Bdh) and the hidden weight's two outer products (2·2Boh)."""
    B, d, h, o, T, K = 6, 200, 9, 4, 7, 3
    torch.manual_seed(0)
    model = PNet(hidden=[h], input_size=d, output_size=o, activation="sigmoid")
    x, y = torch.rand(B, d), torch.nn.functional.one_hot(torch.randint(0, o, (B,)), o).float()
    with OpCounter() as counter:
        EP(0.1, lr=[0.1, 0.1]).train_step(model, x, y, T=T, K=K)
    expected = 2 * B * d * h + (T + K) * 2 * (2 * B * o * h) + 2 * B * d * h + 2 * (2 * B * o * h)
    assert counter.flops == expected
    assert counter.ops > 2 * (T + K)  # at least the products and activations of every step
    what, call, flops = counter.dominant()
    assert what.startswith("mm") and flops == 2 * B * d * h  # the input-sized products lead (d ≫ o·(T+K))
    assert measured_rate(call, flops, torch.device("cpu")) > 0 and counter.products_seconds(torch.device("cpu")) > 0


def test_dispatch_cost_is_positive_and_small():
    assert 0 < dispatch_seconds(torch.device("cpu"), torch.float32) < 1e-3


def test_a_step_without_products_has_no_dominant_operation():
    with OpCounter() as counter:
        torch.ones(3) + 1
    assert counter.flops == 0 and counter.dominant() is None and not counter.by_op and counter.ops == 2


def test_a_product_of_an_expanded_operand_is_timed_on_fresh_tensors_of_its_layout():
    """An operand whose elements share memory (an expanded bias, stride 0; the DCHN's centered-EP step had
    one) cannot be written element by element: the fresh copy draws its storage, then views it. This
    failed the speed kind with "more than one element of the written-to tensor refers to a single memory
    location" before."""
    a, b = torch.rand(5, 1).expand(5, 4), torch.rand(4, 3)
    with OpCounter() as counter:
        a @ b
    assert counter.flops == 2 * 5 * 4 * 3
    key = next(iter(counter.by_op))
    _, call, flops = counter.call(key)
    assert flops == 2 * 5 * 4 * 3 and call().shape == (5, 3)
    assert counter.products_seconds(torch.device("cpu")) > 0

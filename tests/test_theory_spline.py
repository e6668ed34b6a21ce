"""invlab.theory.spline: region ids and template alignment."""


import torch
import torch.nn as nn

from invlab.theory.spline import region_ids, template_alignment


def test_region_ids_of_a_single_relu():
    net = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 2)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        net[0].bias.zero_()
    pts = torch.tensor([[-1.0, 0.0], [-2.0, 3.0], [1.0, 0.0], [2.0, -1.0]], dtype=torch.float64)
    ids = region_ids(net, pts)
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]


def test_template_alignment_with_optimal_templates():
    from invlab.theory import optimal_templates

    x = torch.randn(2, 6, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True)
    y = torch.tensor([0, 2])
    A = torch.stack([optimal_templates(x[i], int(y[i]), 3) for i in range(2)])
    out = template_alignment(A, x, y)
    torch.testing.assert_close(out["true"], torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(out["others"], -torch.ones(2, dtype=torch.float64))

"""The networks several experiments, the benchmark and the tests share, each defined once.

Experiments start from these and ``replace`` what they vary; anything only one experiment uses
stays in that experiment's module.
"""
from __future__ import annotations

from .config import TrialConfig

# The book's optimiser and initialisation comparison (its ch. 6): 784-100x4-10, batch 128.
# The defaults make it ReLU + He, SGD at 0.01.
BOOK_NET = TrialConfig(widths=(100,) * 4, activation="relu", init="he", batch_size=128)

# The book's overfitting demonstration: 6 x 100 ReLU trained on the first 300 training images only.
OVERFIT_300 = TrialConfig(train_size=300, widths=(100,) * 6, activation="relu", init="he", optimizer="sgd",
                          lr=0.01, batch_size=100)

# The book's DeepConvNet (ch. 8): VGG-like 3x3 convolutions 16-16-32-32-64-64, three 2x2 poolings,
# a 50-unit hidden layer, dropout 0.5 before and after it, Adam 0.001, batch 100.
DEEP_CONVNET = TrialConfig(model="cnn", conv=("16", "16", "pool", "32", "32p2", "pool", "64", "64", "pool"),
                           widths=(50,), activation="relu", init="he", dropout=0.5, output_dropout=0.5,
                           optimizer="adam", lr=0.001, batch_size=100)

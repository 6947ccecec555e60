"""dl-repro: the classic training phenomena of deep learning, reproduced, measured and checked."""

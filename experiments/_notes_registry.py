"""Every statement of the notes (../shared/seed/notes-day2.md), the evidence that judges it, and the
audit table experiments/claims_audit.py prints.

A statement's evidence is a list of (experiment, claim id): that experiment's claim, read from
results/<experiment>/<preset>.json ("claims_audit": this audit's own claims). Ids are stable, so a
claim's wording can change without touching this file. Its verdict is the one written here when
every one of those claims holds; "not confirmed" with the failing number when one fails, or when
an id is missing from the results; "not judged at this preset" when a claim needs a longer run
than the results come from; "not run yet: make exp-X" when the results file is missing. A statement with no evidence is not testable here, and its verdict says why.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from repro.claims import FAILS, HOLDS, NOT_JUDGED, verdict
from repro.generalise import beyond_reference, read_matrix
from repro.tables import md_table

OWN = "claims_audit"
TABLE_TITLE = "The notes, statement by statement: evidence (measured) and verdict"
KINDS = ("holds under conditions", "holds", "does not hold", "not testable here", "not run yet", "not confirmed",
         "not judged at this preset")


@dataclass(frozen=True)
class Statement:
    section: str
    ja: str                                  # the notes' own words
    en: str                                  # paraphrase
    verdict: str                             # when every evidence claim holds; or why not testable
    evidence: tuple[tuple[str, str], ...] = ()   # (experiment, claim id)
    figure: tuple[str, str] | None = None    # (experiment, key in its figure titles)
    papers: tuple[tuple[str, str], ...] = ()  # (paper experiment, claim id): the paper behind it, reproduced


def S(section, ja, en, verdict, *evidence, figure=None) -> Statement:
    return Statement(section, ja, en, verdict, tuple(evidence), figure)


V, I, B, O, R, A = "vanishing", "init", "batchnorm", "optimizers", "regularization", OWN
STATEMENTS = [
    S("1", "dz/dx = (dz/dt)*(dt/dx) = (2t)*1 = 2*(x+y)", "Chain rule: z = t^2, t = x + y gives dz/dx = 2(x + y)",
      "holds", (V, "chain-rule")),
    S("1", "誤差逆伝播法が下位層に進んでいくにつれて勾配がどんどん緩やかになっていき、勾配降下法による更新では下位層のパラメータはほとんど変わらず、訓練が最適値に収束しなくなる",
      "Vanishing gradients: the gradient shrinks layer by layer towards the input, the lower layers hardly change and training does not converge",
      "holds under conditions: sigmoid nets, the more so the deeper or the smaller the init; ReLU + He keeps the gradient (1-1)",
      (V, "sigmoid-ratio-shrinks-with-depth"), (V, "sigmoid-n001-does-not-learn"), figure=(V, "gradient")),
    S("1", "シグモイド関数は0~1の間を緩やかに変化する関数で、信号の強弱を伝えられることからNN普及のきっかけとなった",
      "The sigmoid varies smoothly between 0 and 1, conveys signal strength, and started the spread of neural networks",
      "not testable here: history of the field; the smooth 0-1 output is the sigmoid's definition"),
    S("1", "大きな値では出力の変化が微小なため（微分値が小さいため）勾配消失問題を引き起こすことがあった",
      "For large inputs the sigmoid's derivative is tiny, which can cause vanishing gradients",
      "holds", (A, "sigmoid-tail"), (V, "sigmoid-ratio-shrinks-with-depth")),
    S("1", "sig(x)の微分sig'(x)は sig(x)*(1-sig(x)) であり、sig(x)の微分値はx=0の時に最大となる",
      "sigmoid'(x) = sig(x)(1 - sig(x)) and peaks at x = 0", "holds", (V, "sigmoid-derivative-peak-at-0")),
    S("1", "sig(0)=0.5なので、sig'(0)=0.5*(1-0.5)=0.2", "The worked value: sig'(0) = 0.5 * (1 - 0.5) = 0.2",
      "does not hold: 0.5 * (1 - 0.5) = 0.25; the 0.2 is a slip", (V, "sigmoid-derivative-at-0")),
    S("1", "よって答えは(2)0.25である", "So the answer is (2) 0.25", "holds", (V, "sigmoid-derivative-at-0")),
    S("1-1", "現在もっとも使われている活性化関数がReLU（Rectified Linear Unit）関数である",
      "ReLU is the most used activation function today",
      "not testable here: a statement about practice (usage), not about training"),
    S("1-1", "x>0の範囲ではf(x)=xなので勾配消失問題も回避できる", "ReLU is f(x) = x for x > 0, so it avoids vanishing gradients",
      "holds under conditions: with He init; ReLU with N(0, 0.01) still collapses layer by layer (1-2)",
      (V, "relu-he-ratio-steady"), (V, "relu-he-best"), (I, "relu-n001-sd-collapses")),
    S("1-1", "x<=0の範囲ではf(x)=0なのでスパース化に貢献できる", "ReLU is 0 for x <= 0, so it makes activations sparse",
      "holds: a large share of exact zeros; sigmoid and tanh give none", (A, "relu-sparsity"), (A, "sigmoid-tanh-not-sparse"),
      figure=(A, "sparsity")),
    S("1-2", "活性化関数の出力を確認し、0~1の値を極端な偏りが無いこと…が望ましい",
      "Activations should be spread out, not piled at the extremes",
      "holds: piled activations (N(0, 1), N(0, 0.01)) train worst, spread ones (He) best",
      (I, "sigmoid-n1-saturates"), (V, "sigmoid-n001-does-not-learn"), (I, "relu-he-below-xavier"),
      figure=(I, "activations, sigmoid")),
    S("1-2", "各層で出力の分布が異なることが望ましい", "Activations should be distributed differently in each layer",
      "does not hold: He keeps the same distribution in every layer (sd within 20%) and trains best",
      (I, "relu-he-sd-steady"), (I, "relu-he-below-xavier"), figure=(I, "activations, relu")),
    S("1-2", "標準偏差1のガウス分布：自然界の一般的な分布としてもっともよく用いられる",
      "N(0, 1) is the most commonly used distribution in nature",
      "not testable here: a remark about statistics in general, not about training"),
    S("1-2", "（標準偏差1）活性化関数の出力は各層で同じような結果となり、0と1に偏る",
      "With N(0, 1) every layer looks alike, piled at 0 and 1", "holds (sigmoid; tanh piles at -1 and 1)",
      (I, "sigmoid-n1-saturates"), (I, "tanh-n1-saturates"), figure=(I, "activations, sigmoid")),
    S("1-2", "（標準偏差0.01）活性化関数の出力は各層で同じような結果となり、0.5付近に偏る",
      "With N(0, 0.01) every layer looks alike, piled around 0.5", "holds (sigmoid)",
      (I, "sigmoid-n001-sd-small"), (I, "sigmoid-n001-at-half"), figure=(I, "activations, sigmoid")),
    S("1-2", "Xavierの初期値：前の層のノード数の平方根の逆数の標準偏差を持つ分布",
      "Xavier: weights with sd 1/sqrt(n), n the previous layer's width",
      "holds (definition; torch's xavier_normal_ is Glorot's 2/(n_in + n_out), our 'glorot')", (A, "xavier-sd")),
    S("1-2", "（Xavier）活性化関数の出力は各層で出力の分布が異なり、0~1の値を極端な偏りが無い",
      "With Xavier each layer's distribution differs and none is piled at an extreme",
      "holds under conditions: sigmoid/tanh; each layer's sd is what variance propagation predicts",
      (I, "variance-theory-predicts-sd"), figure=(I, "activations, sigmoid")),
    S("1-2", "活性化関数が線形であることを前提に導かれており、左右対称で中央付近が線形関数としてみなせるsigmoid関数やtanh関数に適している",
      "Xavier assumes a linear activation, so it suits sigmoid and tanh (symmetric, linear near 0)",
      "holds under conditions: tanh (slope 1 at 0); sigmoid's slope is 0.25 and its gradient still vanishes with depth; "
      "for ReLU the sd shrinks 1/sqrt(2) a layer", (I, "variance-theory-predicts-sd"), (V, "sigmoid-ratio-shrinks-with-depth"),
      (I, "relu-xavier-sd-shrinks")),
    S("1-2", "Heの初期値：前の層のノード数の平方根の逆数に2の平方根をかけた標準偏差を持つ分布",
      "He: weights with sd sqrt(2)/sqrt(n)", "holds (definition)", (A, "he-sd")),
    S("1-2", "（He）活性化関数の出力は各層で出力の分布が異なり、0~1の値を極端な偏りが無い",
      "With He each layer's distribution differs and none is piled at an extreme",
      "does not hold as written: with ReLU, He keeps the same sd in every layer (that is its point), and ReLU outputs are not confined to 0-1",
      (I, "relu-he-sd-steady"), figure=(I, "activations, relu")),
    S("1-2", "ReLU関数はx<=0でf(x)=0なので、Xavierの初期値の考え方＋係数を倍にするような解釈になる",
      "ReLU zeroes half its inputs, so He is Xavier with the variance doubled",
      "holds", (I, "relu-half-dead"), (I, "relu-xavier-sd-shrinks"), (I, "relu-he-sd-steady")),
    S("1-2", "全ての重みの値が均一に更新されるため、多数の重みを持つ意味がなくなる",
      "Zero init: all weights get the same update, so having many weights is pointless",
      "holds (with ReLU the zero weights do not even move)", (I, "symmetric-init-identical-units"), (I, "relu-zeros-never-moves"), (I, "sigmoid-zeros-gets-gradient")),
    S("1-3", "ミニバッチ単位で、入力値のデータの偏りを抑制する手法で、活性化関数に値を渡す前後にバッチ正規化の処理の層を追加する",
      "Batch norm curbs the drift of each mini-batch's inputs; a BN layer goes before or after the activation",
      "holds (measured with BN before the activation; after it is not compared here)",
      (B, "bn-layer-input-steady"), (B, "plain-layer-input-drifts"), figure=(B, "layer inputs")),
    S("1-3", "学習が安定して高速化が望める", "BN makes training stable and faster", "holds", (B, "sigmoid-bn-halves-iterations"), (B, "relu-bn-halves-iterations"),
      figure=(B, "speed")),
    S("1-3", "初期値にあまり依存しなくなり", "BN makes training less dependent on the initial weights", "holds",
      (B, "bn-trains-at-every-small-scale"), (B, "bn-ahead-at-most-scales"), figure=(B, "weight-scale")),
    S("1-3", "過学習を抑制することができる", "BN suppresses overfitting", "does not hold here: on 300 images BN memorises the training set sooner and leaves a wider train - test gap", (A, "bn-does-not-narrow-gap"),
      figure=(A, "overfitting")),
    S("1-3", "ミニバッチ全体から求めた平均と標準偏差を用いて各入力値に標準化を行い、さらに…スケーリングやシフトを施す",
      "BN standardises each input with the mini-batch mean and sd, then scales and shifts",
      "holds (training mode; at test time running averages replace the batch statistics)",
      (A, "bn-formula"), (B, "train-mode-differs-from-eval")),
    S("1-3", "for i in range(0, N, batch_size): … batch_x, batch_t = data_x[i:i_end], data_t[i:i_end]",
      "The mini-batch loop: slice the data batch_size at a time",
      "holds: every sample once per epoch, the last batch shorter (N mod batch_size); in order, unshuffled, "
      "where this suite draws random batches with replacement as the references do", (A, "minibatch-loop")),
    S("2", "深層学習の目的は学習を通して誤差を最小にするネットワークを作成することで、勾配効果法を利用してパラメータを最適化する",
      "Deep learning minimises the error by optimising the parameters with gradient descent ('勾配効果法' is a typo for 勾配降下法)",
      "not testable here: the definition of the task"),
    S("2", "パラメータの最適化には学習率が大きく関わる", "The learning rate matters greatly",
      "holds", (A, "learning-rate-matters"), figure=(A, "window")),
    S("2", "学習率の値が大きい場合: 最適値にいつまでもたどり着かず発散してしまう", "Too large a rate never reaches the optimum and diverges",
      "holds under conditions: beyond a rate that depends on the optimiser; at lr 1 none learns, but some blow up "
      "while others stall at chance", (O, "rate-too-large-adam"), (A, "rate-too-large"),
      figure=(A, "window")),
    S("2", "学習率の値が小さい場合: 発散することは無いが、収束するまでに時間がかかってしまう",
      "Too small a rate does not diverge but takes long to converge", "holds", (O, "rate-too-small-sgd"), (A, "rate-too-small"),
      figure=(O, "learning-rate")),
    S("2", "（学習率の値が小さい場合）大域局所最適解に収束しづらくなる", "Too small a rate rarely reaches the global optimum (the notes' '大域局所' is garbled)",
      "holds under conditions: on the double well every small rate stops in the local minimum; on MNIST a small rate is just unfinished",
      (A, "small-rate-local-minimum"), figure=(A, "double well")),
    S("2", "初期の学習率を大きく設定し、徐々に学習率を小さくしていく", "Start with a large rate and decrease it gradually",
      "holds (cosine decay from the optimizers experiment's rate)", (O, "decay-beats-constant"), figure=(O, "decay")),
    S("2", "パラメータ毎に学習率を可変させる", "Give each parameter its own learning rate (AdaGrad, RMSProp, Adam)",
      "holds: the adaptive optimisers beat SGD on the book's network", (O, "book-sgd-late-loss-ratio"), (A, "adaptive-beat-sgd")),
    S("2-1", "（勾配降下法）誤差をパラメータで微分したものと学習率の積を減算する", "SGD subtracts lr x gradient",
      "holds (torch.optim's steps follow the rule)", (A, "update-rule-sgd")),
    S("2-1", "（モメンタム）現在の重みに前回の重みを減算した値と慣性の積を加算する",
      "Momentum also adds inertia x (current - previous weights)", "holds (torch.optim's steps follow the rule)",
      (A, "update-rule-momentum")),
    S("2-1", "（モメンタム）局所最適解にならず大域的最適解となる", "Momentum does not stop at a local optimum; it reaches the global one",
      "holds under conditions: more often than SGD, never guaranteed (the share depends on rate and momentum)",
      (A, "well-momentum-beats-sgd"), (A, "well-momentum-not-guaranteed"), figure=(A, "double well")),
    S("2-1", "（モメンタム）谷間についてから最適値にいくまでの時間が早い", "Momentum is faster to the optimum once in the valley",
      "holds under conditions: with its momentum tuned too (best rate and m on the grid); at the customary m = 0.9 "
      "it settles later than SGD", (A, "valley-momentum-faster"), (A, "valley-momentum-0.9-slower"), figure=(A, "valley")),
    S("2-2", "（AdaGrad）誤差をパラメータで微分したものと、再定義した学習率の積を減算する",
      "AdaGrad subtracts gradient x a redefined rate (lr / root of the summed squared gradients)",
      "holds (torch.optim's steps follow the rule)", (A, "update-rule-adagrad")),
    S("2-2", "（AdaGrad）勾配の緩やかな斜面に対して最適値に近づける", "AdaGrad gets close to the optimum on gentle slopes",
      "holds", (A, "valley-adagrad-faster"), (O, "valley-adagrad-nearest"), figure=(A, "valley")),
    S("2-2", "学習率が徐々に小さくなるので、鞍点問題を引き起こす", "AdaGrad's rate keeps shrinking, which causes the saddle-point problem",
      ("does not hold here: the rate does shrink, yet AdaGrad escapes the saddle no slower than SGD (dividing by the root "
      "of small squared gradients enlarges the tiny escape gradient); the accumulated squares slow it only when the "
      "escape direction shares coordinates with the approach (rotated saddle)"), (A, "adagrad-rate-shrinks"), (A, "saddle-adagrad"), figure=(A, "saddle")),
    S("2-3", "（RMSProp）前回の学習率の変化と誤差微分の割合を変えれる",
      "RMSProp: a decaying mean of squared gradients whose weighting of past and new is adjustable",
      "holds (torch.optim's steps follow the rule; alpha sets the weighting)", (A, "update-rule-rmsprop")),
    S("2-3", "（RMSProp）局所最適解にならず大域的最適解となる", "RMSProp does not stop at a local optimum; it reaches the global one",
      "does not hold: RMSProp ends in the global minimum no more often than SGD", (A, "well-rmsprop"), figure=(A, "double well")),
    S("2-3", "（RMSProp）ハイパーパラメータの調整が楽", "RMSProp is easy to tune", ("does not hold as a distinction: its learning-rate window is no wider than the others' (quick, 10 seeds: "
      "4th of 5, only SGD's narrower; full: the narrowest of the five)"), (A, "rmsprop-window"),
      figure=(A, "window")),
    S("2-4", "（Adam）モメンタムとRMSProp両方の概要を含む／モメンタム：過去の勾配の指数関数的減衰平均",
      "Adam combines both: a decaying mean of past gradients (momentum) over RMSProp's root mean square",
      "holds (torch.optim's steps follow the rule)", (A, "update-rule-adam")),
    S("2-4", "（Adam）モメンタムとRMSPropのメリットを含む", "Adam has the merits of both Momentum and RMSProp", ("does not hold as a rule: Adam is the best of the three on the double well and close to the better one on MNIST, "
      "but the slowest on the valley and the rotated saddle"),
      (A, "adam-vs-momentum-rmsprop-well"), (A, "adam-vs-momentum-rmsprop-valley"), (A, "adam-vs-momentum-rmsprop-saddle"), (A, "adam-vs-momentum-rmsprop-mnist"), figure=(A, "valley")),
    S("3", "過学習とは、テスト誤差と訓練誤差で学習曲線が乖離すること（特定の訓練サンプルに対して、特化して学習する）",
      "Overfitting: the train and test curves part (the net specialises in its training samples)",
      "holds", (R, "book-memorises"), (R, "book-gap-large"), figure=(R, "book setting: train")),
    S("3", "原因はパラメータの数が多い、パラメータの値が適切でない、ノードが多いなどが考えられ、つまりネットワークの自由度（層数、ノード数、パラメータの値etc）が高いことである",
      "Its cause is too much freedom: many parameters, nodes, unsuitable values", ("holds under conditions: a 1 x 16 net leaves a narrower gap, but it also fits fewer training images; "
      "300 images are overfitted by both"), (A, "capacity-narrows-gap"),
      figure=(A, "overfitting")),
    S("3", "正則化とは、ネットワークの自由度を制約することである。これによって過学習を抑制する",
      "Regularisation restricts the freedom and so suppresses overfitting",
      "holds under conditions: it narrows the gap; it raises test accuracy where there is data to generalise from (dropout paper), "
      "in the book's 300-image setting mostly by lowering train accuracy",
      (R, "l2-narrows-gap"), (R, "dropout-narrows-gap"), (R, "paper-dropout-raises-test")),
    S("3", "過学習の原因としては重みが大きい値を取ることである。よって…正則化項を加算することで、重みが大きい値を取りすぎないように重みを抑制する",
      "Overfitting comes from large weights, so a penalty term keeps them small",
      "holds under conditions: the penalty works (L2 narrows the gap); that large weights are the cause is not isolated here",
      (R, "l2-train-below-100"), (R, "l2-narrows-gap")),
    S("3-1", "誤差関数にpノルムという正則化項を加える…l1ノルム：重みの絶対値の和", "L1 adds the sum of |w| to the loss",
      "holds (definition)", (A, "l1-norm")),
    S("3-1", "l2ノルム：重みのユークリッド距離のようなもの（を2で割る）", "L2: something like the Euclidean length of the weights, halved",
      "holds under conditions: the term is half the squared length, 0.5 * sum w^2 (its gradient is w), not the length",
      (A, "l2-gradient")),
    S("3-1", "（l1正則化）スパース性があることが特徴", "L1's mark is sparsity",
      "holds under conditions: the subgradient penalty gives near-zero weights; exact zeros need a proximal step",
      (R, "l1-near-zero-weights"), (R, "proximal-l1-exact-zeros"), figure=(R, "first-layer weights")),
    S("3-1", "l2ノルムの勾配は2*paramになるが、係数2は正則化の係数に吸収されても変わらないので、paramが正解",
      "L2's gradient is 2 * param; the 2 goes into the coefficient, so param", "holds", (A, "l2-gradient"), (A, "l2-step")),
    S("3-1", "l1ノルムの勾配は符号関数（sign（param))になる", "L1's gradient is sign(param)", "holds (0 at exactly 0)",
      (A, "l1-gradient")),
    S("3-2", "NNのノード数が多いとネットワークの自由度が上がり、過学習に陥りやすい", "Many nodes mean freedom and overfitting",
      ("holds under conditions: a 1 x 16 net leaves a narrower gap, but it also fits fewer training images; "
      "300 images are overfitted by both"), (A, "capacity-narrows-gap"), figure=(A, "overfitting")),
    S("3-2", "ドロップアウトでは、NNのノード数をランダムに削除して学習させる", "Dropout deletes random nodes during training",
      "holds (one mask drops a share p; eval mode drops none)", (A, "dropout-mask-share")),
    S("3-2", "データ量を変化させなくても、異なるモデルを学習させていると解釈できる",
      "Dropout can be read as training different models without changing the data",
      ("holds: each mask is a thinned net, less accurate alone; averaging many masks reproduces the scaled net's "
      "accuracy and predictions"), (A, "dropout-ensemble-accuracy"), (A, "dropout-ensemble-agreement"), (A, "single-mask-less-accurate"), figure=(A, "dropout")),
    S("4", "（見出しのみ）畳み込みニューラルネットワークの概念", "Section 4: CNN concepts (heading only)",
      "not testable here: the notes have no statement (make exp-cnn checks the convolution itself)"),
    S("5", "（見出しのみ）最新のCNN", "Section 5: modern CNNs (heading only)",
      "not testable here: the notes have no statement (make exp-modern-cnn trains them)"),
]

GB, HE, IS, KB, SR, SU = "glorot2010", "he2015", "ioffe2015", "kingma2015", "srivastava2014", "sutskever2013"
# The paper behind a statement (its number in the table, as printed): the claims of that paper's
# experiment that reproduce its evidence. Shown beside the notes' own evidence; never part of the verdict.
PAPERS_BEHIND = {
    2: ((GB, "backprop-variance-shrinks-standard"), (GB, "sigmoid-stalls"), (HE, "deep-30-xavier-stalls")),
    4: ((GB, "sigmoid-top-layer-saturates"),),
    9: ((HE, "deep-30-he-trains"),),
    11: ((GB, "sigmoid-top-layer-saturates"), (GB, "sigmoid-stalls")),
    17: ((GB, "backprop-variance-kept-normalized"), (GB, "jacobian-normalized")),
    18: ((GB, "jacobian-standard"), (GB, "jacobian-normalized"), (GB, "tanh-softsign-learn")),
    20: ((HE, "signal-he-kept"), (HE, "deep-30-he-trains")),
    21: ((HE, "signal-xavier-theory"), (HE, "deep-22-he-earlier"), (HE, "deep-30-xavier-stalls")),
    23: ((IS, "bn-inputs-stay"),),
    24: ((IS, "bn-faster"), (IS, "bn-ends-higher")),
    25: ((IS, "bn-insensitive-to-settings"),),
    35: ((KB, "logreg-adam-like-nesterov"), (KB, "mlp-adam-best")),
    39: ((SU, "momentum-trains-where-sgd-stalls"), (SU, "nag-beats-cm-at-high-momentum")),
    46: ((KB, "bias-correction-first-step"),),
    47: ((KB, "mlp-adam-best"), (KB, "logreg-adam-like-nesterov")),
    50: ((SR, "dropout-beats-none"), (SR, "dropout-beats-l2")),
    58: ((SR, "dropout-beats-none"),),
    59: ((SR, "mc-matches-scaling"), (SR, "mc-one-sample-worse")),
}
STATEMENTS = [replace(s, papers=PAPERS_BEHIND.get(number, ())) for number, s in enumerate(STATEMENTS, start=1)]


# ---- judging: evidence from results files, one row per statement ----

def read_results(root: Path, experiment: str, preset: str) -> dict | None:
    """results/<experiment>/<preset>.json, else that experiment's full, cpu (a paper's), else quick
    results; None if none."""
    for name in dict.fromkeys((preset, "full", "cpu", "quick")):
        path = Path(root) / experiment / f"{name}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return None


def _number(x) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def judge(statement: Statement, sources: dict[str, dict | None]) -> tuple[str, list[str]]:
    """(verdict, evidence lines) for one statement; sources maps experiment -> results (or None)."""
    if not statement.evidence:
        return statement.verdict, []
    lines, missing, failing, absent, unjudged = [], [], [], [], []
    for experiment, key in statement.evidence:
        results = sources.get(experiment)
        if results is None:
            missing.append(experiment)
            lines.append(f"{experiment}: {key}: not run")
            continue
        found = [c for c in results.get("claims", []) if c.get("id") == key]
        if not found:
            absent.append(f"claim '{key}' not in {experiment}/{results.get('preset')} results (re-run make exp-{experiment})")
        for c in found:
            outcome = verdict(c)
            mark = {HOLDS: "✓", FAILS: "✗", NOT_JUDGED: f"not judged (needs {c.get('needs')})"}[outcome]
            detail = f" [{c['detail']}]" if c.get("detail") else ""
            lines.append(f"{experiment}/{results.get('preset')}: {key}: {_number(c['measured'])} ({c['bound']}) {mark}{detail}")
            if outcome == FAILS:
                failing.append(f"{experiment}: {c['statement']} measured {_number(c['measured'])}, needs {c['bound']}")
            elif outcome == NOT_JUDGED:
                unjudged.append(f"{experiment}: {c['statement']} needs {c['needs']}")
    if missing:
        return "not run yet: " + ", ".join(f"make exp-{e}" for e in dict.fromkeys(missing)), lines
    if absent or failing:
        return "not confirmed: " + "; ".join(absent + failing), lines
    if unjudged:
        return "not judged at this preset: " + "; ".join(unjudged), lines
    return statement.verdict, lines


def _figure_link(statement: Statement, sources: dict[str, dict | None]) -> str:
    """A link that works from reports/REPORT.md: the named figure as the report copies it, else the
    section of the first experiment with evidence."""
    if statement.figure:
        experiment, key = statement.figure
        listed = ((sources.get(experiment) or {}).get("extras") or {}).get("figures") or {}
        path = next((p for title, p in listed.items() if key.lower() in title.lower()), None)
        if path:
            return f"[figure](figures/{experiment}/{Path(path).name})"
    if statement.evidence:
        return f"[{statement.evidence[0][0]}](#{statement.evidence[0][0]})"
    return "-"


def _paper_lines(statement: Statement, sources: dict[str, dict | None]) -> list[str]:
    """The paper behind a statement, linked to its section of the report, with its claims' values."""
    if not statement.papers:
        return []
    verdict, lines = judge(replace(statement, evidence=statement.papers, verdict="holds"), sources)
    names = ", ".join(f"[{e}](#{e})" for e in dict.fromkeys(e for e, _ in statement.papers))
    return [f"{names}: {verdict}"] + lines


def audit(own: list, results_root: Path, preset: str, own_figures: dict) -> list[dict]:
    """One row per statement; ``own`` are this audit's claims (Claim objects), ``own_figures`` its figures."""
    experiments = {e for s in STATEMENTS for e, _ in s.evidence + s.papers} - {OWN}
    sources = {e: read_results(results_root, e, preset) for e in sorted(experiments)}
    sources[OWN] = {"preset": preset, "claims": [c.to_dict() for c in own], "extras": {"figures": own_figures}}
    matrix = read_matrix(results_root, preset)   # python -m repro generalise, if it has run at this preset
    rows = []
    for number, s in enumerate(STATEMENTS, start=1):
        verdict, lines = judge(s, sources)
        rows.append({"number": number, "section": s.section, "statement": s.en, "original": s.ja,
                     "evidence": lines, "evidence_ids": [list(e) for e in s.evidence], "verdict": verdict,
                     "kind": kind_of(verdict), "beyond": beyond_reference(list(s.evidence), matrix),
                     "see": _figure_link(s, sources), "papers": _paper_lines(s, sources)})
    return rows


def kind_of(verdict: str) -> str:
    kind = next((k for k in KINDS if verdict.startswith(k)), None)
    if kind is None:
        raise ValueError(f"verdict '{verdict[:40]}...' does not open with one of: {', '.join(KINDS)}")
    return kind


def verdict_counts(rows: list[dict]) -> dict[str, int]:
    return {k: sum(r["kind"] == k for r in rows) for k in KINDS}


def audit_table(rows: list[dict]) -> str:
    table = md_table(["#", "section", "statement", "original (notes)", "evidence: measured (bound)", "verdict",
                      "its evidence beyond the reference setup", "the paper behind it (reproduced)", "see"],
                     [[r["number"], r["section"], r["statement"], r["original"], "; ".join(r["evidence"]) or "-",
                       f"**{r['verdict']}**", r["beyond"] if r["evidence"] else "-", "; ".join(r.get("papers", [])) or "-",
                       r["see"]] for r in rows])
    counts = verdict_counts(rows)
    return table + f"\n\n{len(rows)} statements: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)

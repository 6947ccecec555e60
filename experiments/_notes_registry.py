"""Every statement of the notes (../shared/seed/notes-day2.md), the evidence that judges it, and the
audit table experiments/claims_audit.py prints.

A statement has a stable ``name`` (a slug: what PAPERS_BEHIND and other code key it by; its number in
the table is only its position). Its evidence is a list of (experiment, claim id): that experiment's
claim, read from results/<experiment>/<preset>.json ("claims_audit": this audit's own claims), cited
through the short helpers below (``vanishing("chain-rule")``). Ids are stable, so a claim's wording can
change without touching this file. Its verdict is the one written here when every one of those claims
holds; "not confirmed" with the failing number when one fails, or when an id is missing from the
results; "not judged at this preset" when a claim needs a longer run than the results come from; "not
run yet: make exp-X" when the results file is missing. A statement with no evidence is not testable
here, and its verdict says why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from repro.claims import FAILS, HOLDS, NOT_JUDGED, Claim, verdict
from repro.generalise import beyond_reference, read_matrix
from repro.layout import Layout
from repro.results import ResultsError, Run, load
from repro.tables import md_table

OWN = "claims_audit"
TABLE_TITLE = "The notes, statement by statement: evidence (measured) and verdict"
KINDS = ("holds under conditions", "holds", "does not hold", "not testable here", "not run yet", "not confirmed",
         "not judged at this preset")


@dataclass(frozen=True)
class Statement:
    name: str                                # stable slug (lower case, digits, '-')
    section: str
    ja: str                                  # the notes' own words
    en: str                                  # paraphrase
    verdict: str                             # when every evidence claim holds; or why not testable
    evidence: tuple[tuple[str, str], ...] = ()   # (experiment, claim id)
    figure: tuple[str, str] | None = None    # (experiment, key in its figure titles)
    papers: tuple[tuple[str, str], ...] = ()  # (paper experiment, claim id): the paper behind it, reproduced


def _citing(experiment: str):
    """A helper that cites claims of ``experiment`` by id: vanishing("a", "b") gives (("vanishing", "a"),
    ("vanishing", "b")); helpers are added (+) where a statement's evidence spans experiments."""
    return lambda *ids: tuple((experiment, key) for key in ids)


vanishing, init, batchnorm, optimizers, regularization, own = (
    _citing(e) for e in ("vanishing", "init", "batchnorm", "optimizers", "regularization", OWN))
glorot2010, he2015, ioffe2015, kingma2015, srivastava2014, sutskever2013 = (
    _citing(e) for e in ("glorot2010", "he2015", "ioffe2015", "kingma2015", "srivastava2014", "sutskever2013"))

STATEMENTS = [
    Statement(name="chain-rule", section="1",
              ja="dz/dx = (dz/dt)*(dt/dx) = (2t)*1 = 2*(x+y)",
              en="Chain rule: z = t^2, t = x + y gives dz/dx = 2(x + y)",
              verdict="holds",
              evidence=vanishing("chain-rule")),
    Statement(name="vanishing-gradients", section="1",
              ja="誤差逆伝播法が下位層に進んでいくにつれて勾配がどんどん緩やかになっていき、勾配降下法による更新では下位層のパラメータはほとんど変わらず、訓練が最適値に収束しなくなる",
              en="Vanishing gradients: the gradient shrinks layer by layer towards the input, the lower layers hardly "
                 "change and training does not converge",
              verdict="holds under conditions: sigmoid nets, the more so the deeper or the smaller the init; ReLU + He "
                      "keeps the gradient (1-1)",
              evidence=vanishing("sigmoid-ratio-shrinks-with-depth", "sigmoid-n001-does-not-learn"),
              figure=("vanishing", "gradient")),
    Statement(name="sigmoid-history", section="1",
              ja="シグモイド関数は0~1の間を緩やかに変化する関数で、信号の強弱を伝えられることからNN普及のきっかけとなった",
              en="The sigmoid varies smoothly between 0 and 1, conveys signal strength, and started the spread of "
                 "neural networks",
              verdict="not testable here: history of the field; the smooth 0-1 output is the sigmoid's definition"),
    Statement(name="sigmoid-tail-vanishes", section="1",
              ja="大きな値では出力の変化が微小なため（微分値が小さいため）勾配消失問題を引き起こすことがあった",
              en="For large inputs the sigmoid's derivative is tiny, which can cause vanishing gradients",
              verdict="holds",
              evidence=own("sigmoid-tail") + vanishing("sigmoid-ratio-shrinks-with-depth")),
    Statement(name="sigmoid-derivative-peak", section="1",
              ja="sig(x)の微分sig'(x)は sig(x)*(1-sig(x)) であり、sig(x)の微分値はx=0の時に最大となる",
              en="sigmoid'(x) = sig(x)(1 - sig(x)) and peaks at x = 0",
              verdict="holds",
              evidence=vanishing("sigmoid-derivative-peak-at-0")),
    Statement(name="sigmoid-derivative-worked-value", section="1",
              ja="sig(0)=0.5なので、sig'(0)=0.5*(1-0.5)=0.2",
              en="The worked value: sig'(0) = 0.5 * (1 - 0.5) = 0.2",
              verdict="does not hold: 0.5 * (1 - 0.5) = 0.25; the 0.2 is a slip",
              evidence=vanishing("sigmoid-derivative-at-0")),
    Statement(name="sigmoid-derivative-answer", section="1",
              ja="よって答えは(2)0.25である",
              en="So the answer is (2) 0.25",
              verdict="holds",
              evidence=vanishing("sigmoid-derivative-at-0")),
    Statement(name="relu-most-used", section="1-1",
              ja="現在もっとも使われている活性化関数がReLU（Rectified Linear Unit）関数である",
              en="ReLU is the most used activation function today",
              verdict="not testable here: a statement about practice (usage), not about training"),
    Statement(name="relu-avoids-vanishing", section="1-1",
              ja="x>0の範囲ではf(x)=xなので勾配消失問題も回避できる",
              en="ReLU is f(x) = x for x > 0, so it avoids vanishing gradients",
              verdict="holds under conditions: with He init; ReLU with N(0, 0.01) still collapses layer by layer (1-2)",
              evidence=vanishing("relu-he-ratio-steady", "relu-he-best") + init("relu-n001-sd-collapses")),
    Statement(name="relu-sparse", section="1-1",
              ja="x<=0の範囲ではf(x)=0なのでスパース化に貢献できる",
              en="ReLU is 0 for x <= 0, so it makes activations sparse",
              verdict="holds: a large share of exact zeros; sigmoid and tanh give none",
              evidence=own("relu-sparsity", "sigmoid-tanh-not-sparse"), figure=(OWN, "sparsity")),
    Statement(name="activations-spread-out", section="1-2",
              ja="活性化関数の出力を確認し、0~1の値を極端な偏りが無いこと…が望ましい",
              en="Activations should be spread out, not piled at the extremes",
              verdict="holds: piled activations (N(0, 1), N(0, 0.01)) train worst, spread ones (He) best",
              evidence=init("sigmoid-n1-saturates") + vanishing("sigmoid-n001-does-not-learn") + init("relu-he-below-xavier"),
              figure=("init", "activations, sigmoid")),
    Statement(name="activations-differ-per-layer", section="1-2",
              ja="各層で出力の分布が異なることが望ましい",
              en="Activations should be distributed differently in each layer",
              verdict="does not hold: He keeps the same distribution in every layer (sd within 20%) and trains best",
              evidence=init("relu-he-sd-steady", "relu-he-below-xavier"), figure=("init", "activations, relu")),
    Statement(name="normal-in-nature", section="1-2",
              ja="標準偏差1のガウス分布：自然界の一般的な分布としてもっともよく用いられる",
              en="N(0, 1) is the most commonly used distribution in nature",
              verdict="not testable here: a remark about statistics in general, not about training"),
    Statement(name="n1-piles-at-extremes", section="1-2",
              ja="（標準偏差1）活性化関数の出力は各層で同じような結果となり、0と1に偏る",
              en="With N(0, 1) every layer looks alike, piled at 0 and 1",
              verdict="holds (sigmoid; tanh piles at -1 and 1)",
              evidence=init("sigmoid-n1-saturates", "tanh-n1-saturates"), figure=("init", "activations, sigmoid")),
    Statement(name="n001-piles-at-half", section="1-2",
              ja="（標準偏差0.01）活性化関数の出力は各層で同じような結果となり、0.5付近に偏る",
              en="With N(0, 0.01) every layer looks alike, piled around 0.5",
              verdict="holds (sigmoid)",
              evidence=init("sigmoid-n001-sd-small", "sigmoid-n001-at-half"), figure=("init", "activations, sigmoid")),
    Statement(name="xavier-definition", section="1-2",
              ja="Xavierの初期値：前の層のノード数の平方根の逆数の標準偏差を持つ分布",
              en="Xavier: weights with sd 1/sqrt(n), n the previous layer's width",
              verdict="holds (definition; torch's xavier_normal_ is Glorot's 2/(n_in + n_out), our 'glorot')",
              evidence=own("xavier-sd")),
    Statement(name="xavier-layers-differ", section="1-2",
              ja="（Xavier）活性化関数の出力は各層で出力の分布が異なり、0~1の値を極端な偏りが無い",
              en="With Xavier each layer's distribution differs and none is piled at an extreme",
              verdict="holds under conditions: sigmoid/tanh; each layer's sd is what variance propagation predicts",
              evidence=init("variance-theory-predicts-sd"), figure=("init", "activations, sigmoid")),
    Statement(name="xavier-suits-sigmoid-tanh", section="1-2",
              ja="活性化関数が線形であることを前提に導かれており、左右対称で中央付近が線形関数としてみなせるsigmoid関数やtanh関数に適している",
              en="Xavier assumes a linear activation, so it suits sigmoid and tanh (symmetric, linear near 0)",
              verdict="holds under conditions: tanh (slope 1 at 0); sigmoid's slope is 0.25 and its gradient still "
                      "vanishes with depth; for ReLU the sd shrinks 1/sqrt(2) a layer",
              evidence=init("variance-theory-predicts-sd") + vanishing("sigmoid-ratio-shrinks-with-depth") + init("relu-xavier-sd-shrinks")),
    Statement(name="he-definition", section="1-2",
              ja="Heの初期値：前の層のノード数の平方根の逆数に2の平方根をかけた標準偏差を持つ分布",
              en="He: weights with sd sqrt(2)/sqrt(n)",
              verdict="holds (definition)",
              evidence=own("he-sd")),
    Statement(name="he-layers-differ", section="1-2",
              ja="（He）活性化関数の出力は各層で出力の分布が異なり、0~1の値を極端な偏りが無い",
              en="With He each layer's distribution differs and none is piled at an extreme",
              verdict="does not hold as written: with ReLU, He keeps the same sd in every layer (that is its point), "
                      "and ReLU outputs are not confined to 0-1",
              evidence=init("relu-he-sd-steady"), figure=("init", "activations, relu")),
    Statement(name="he-is-xavier-doubled", section="1-2",
              ja="ReLU関数はx<=0でf(x)=0なので、Xavierの初期値の考え方＋係数を倍にするような解釈になる",
              en="ReLU zeroes half its inputs, so He is Xavier with the variance doubled",
              verdict="holds",
              evidence=init("relu-half-dead", "relu-xavier-sd-shrinks", "relu-he-sd-steady")),
    Statement(name="zero-init-symmetry", section="1-2",
              ja="全ての重みの値が均一に更新されるため、多数の重みを持つ意味がなくなる",
              en="Zero init: all weights get the same update, so having many weights is pointless",
              verdict="holds (with ReLU the zero weights do not even move)",
              evidence=init("symmetric-init-identical-units", "relu-zeros-never-moves", "sigmoid-zeros-gets-gradient")),
    Statement(name="bn-curbs-drift", section="1-3",
              ja="ミニバッチ単位で、入力値のデータの偏りを抑制する手法で、活性化関数に値を渡す前後にバッチ正規化の処理の層を追加する",
              en="Batch norm curbs the drift of each mini-batch's inputs; a BN layer goes before or after the "
                 "activation",
              verdict="holds (measured with BN before the activation; after it is not compared here)",
              evidence=batchnorm("bn-layer-input-steady", "plain-layer-input-drifts"),
              figure=("batchnorm", "layer inputs")),
    Statement(name="bn-faster", section="1-3",
              ja="学習が安定して高速化が望める",
              en="BN makes training stable and faster",
              verdict="holds",
              evidence=batchnorm("sigmoid-bn-halves-iterations", "relu-bn-halves-iterations"),
              figure=("batchnorm", "speed")),
    Statement(name="bn-init-insensitive", section="1-3",
              ja="初期値にあまり依存しなくなり",
              en="BN makes training less dependent on the initial weights",
              verdict="holds",
              evidence=batchnorm("bn-trains-at-every-small-scale", "bn-ahead-at-most-scales"),
              figure=("batchnorm", "weight-scale")),
    Statement(name="bn-suppresses-overfitting", section="1-3",
              ja="過学習を抑制することができる",
              en="BN suppresses overfitting",
              verdict="does not hold here: on 300 images BN memorises the training set sooner and leaves a wider train "
                      "- test gap",
              evidence=own("bn-does-not-narrow-gap"), figure=(OWN, "overfitting")),
    Statement(name="bn-formula", section="1-3",
              ja="ミニバッチ全体から求めた平均と標準偏差を用いて各入力値に標準化を行い、さらに…スケーリングやシフトを施す",
              en="BN standardises each input with the mini-batch mean and sd, then scales and shifts",
              verdict="holds (training mode; at test time running averages replace the batch statistics)",
              evidence=own("bn-formula") + batchnorm("train-mode-differs-from-eval")),
    Statement(name="minibatch-loop", section="1-3",
              ja="for i in range(0, N, batch_size): … batch_x, batch_t = data_x[i:i_end], data_t[i:i_end]",
              en="The mini-batch loop: slice the data batch_size at a time",
              verdict="holds: every sample once per epoch, the last batch shorter (N mod batch_size); in order, "
                      "unshuffled, where this suite draws random batches with replacement as the references do",
              evidence=own("minibatch-loop")),
    Statement(name="gradient-descent-task", section="2",
              ja="深層学習の目的は学習を通して誤差を最小にするネットワークを作成することで、勾配効果法を利用してパラメータを最適化する",
              en="Deep learning minimises the error by optimising the parameters with gradient descent ('勾配効果法' is a "
                 "typo for 勾配降下法)",
              verdict="not testable here: the definition of the task"),
    Statement(name="learning-rate-matters", section="2",
              ja="パラメータの最適化には学習率が大きく関わる",
              en="The learning rate matters greatly",
              verdict="holds",
              evidence=own("learning-rate-matters"), figure=(OWN, "window")),
    Statement(name="rate-too-large", section="2",
              ja="学習率の値が大きい場合: 最適値にいつまでもたどり着かず発散してしまう",
              en="Too large a rate never reaches the optimum and diverges",
              verdict="holds under conditions: beyond a rate that depends on the optimiser; at lr 1 none learns, but "
                      "some blow up while others stall at chance",
              evidence=optimizers("rate-too-large-adam") + own("rate-too-large"), figure=(OWN, "window")),
    Statement(name="rate-too-small-slow", section="2",
              ja="学習率の値が小さい場合: 発散することは無いが、収束するまでに時間がかかってしまう",
              en="Too small a rate does not diverge but takes long to converge",
              verdict="holds",
              evidence=optimizers("rate-too-small-sgd") + own("rate-too-small"),
              figure=("optimizers", "learning-rate")),
    Statement(name="rate-too-small-local", section="2",
              ja="（学習率の値が小さい場合）大域局所最適解に収束しづらくなる",
              en="Too small a rate rarely reaches the global optimum (the notes' '大域局所' is garbled)",
              verdict="holds under conditions: on the double well every small rate stops in the local minimum; on "
                      "MNIST a small rate is just unfinished",
              evidence=own("small-rate-local-minimum"), figure=(OWN, "double well")),
    Statement(name="rate-decay", section="2",
              ja="初期の学習率を大きく設定し、徐々に学習率を小さくしていく",
              en="Start with a large rate and decrease it gradually",
              verdict="holds (cosine decay from the optimizers experiment's rate)",
              evidence=optimizers("decay-beats-constant"), figure=("optimizers", "decay")),
    Statement(name="per-parameter-rates", section="2",
              ja="パラメータ毎に学習率を可変させる",
              en="Give each parameter its own learning rate (AdaGrad, RMSProp, Adam)",
              verdict="holds: the adaptive optimisers beat SGD on the book's network",
              evidence=optimizers("book-sgd-late-loss-ratio") + own("adaptive-beat-sgd")),
    Statement(name="sgd-rule", section="2-1",
              ja="（勾配降下法）誤差をパラメータで微分したものと学習率の積を減算する",
              en="SGD subtracts lr x gradient",
              verdict="holds (torch.optim's steps follow the rule)",
              evidence=own("update-rule-sgd")),
    Statement(name="momentum-rule", section="2-1",
              ja="（モメンタム）現在の重みに前回の重みを減算した値と慣性の積を加算する",
              en="Momentum also adds inertia x (current - previous weights)",
              verdict="holds (torch.optim's steps follow the rule)",
              evidence=own("update-rule-momentum")),
    Statement(name="momentum-global-optimum", section="2-1",
              ja="（モメンタム）局所最適解にならず大域的最適解となる",
              en="Momentum does not stop at a local optimum; it reaches the global one",
              verdict="holds under conditions: more often than SGD, never guaranteed (the share depends on rate and "
                      "momentum)",
              evidence=own("well-momentum-beats-sgd", "well-momentum-not-guaranteed"), figure=(OWN, "double well")),
    Statement(name="momentum-faster-in-valley", section="2-1",
              ja="（モメンタム）谷間についてから最適値にいくまでの時間が早い",
              en="Momentum is faster to the optimum once in the valley",
              verdict="holds under conditions: with its momentum tuned too (best rate and m on the grid); at the "
                      "customary m = 0.9 it settles later than SGD",
              evidence=own("valley-momentum-faster", "valley-momentum-0.9-slower"), figure=(OWN, "valley")),
    Statement(name="adagrad-rule", section="2-2",
              ja="（AdaGrad）誤差をパラメータで微分したものと、再定義した学習率の積を減算する",
              en="AdaGrad subtracts gradient x a redefined rate (lr / root of the summed squared gradients)",
              verdict="holds (torch.optim's steps follow the rule)",
              evidence=own("update-rule-adagrad")),
    Statement(name="adagrad-gentle-slopes", section="2-2",
              ja="（AdaGrad）勾配の緩やかな斜面に対して最適値に近づける",
              en="AdaGrad gets close to the optimum on gentle slopes",
              verdict="holds",
              evidence=own("valley-adagrad-faster") + optimizers("valley-adagrad-nearest"), figure=(OWN, "valley")),
    Statement(name="adagrad-saddle", section="2-2",
              ja="学習率が徐々に小さくなるので、鞍点問題を引き起こす",
              en="AdaGrad's rate keeps shrinking, which causes the saddle-point problem",
              verdict="does not hold here: the rate does shrink, yet AdaGrad escapes the saddle no slower than SGD "
                      "(dividing by the root of small squared gradients enlarges the tiny escape gradient); the "
                      "accumulated squares slow it only when the escape direction shares coordinates with the approach "
                      "(rotated saddle)",
              evidence=own("adagrad-rate-shrinks", "saddle-adagrad"), figure=(OWN, "saddle")),
    Statement(name="rmsprop-rule", section="2-3",
              ja="（RMSProp）前回の学習率の変化と誤差微分の割合を変えれる",
              en="RMSProp: a decaying mean of squared gradients whose weighting of past and new is adjustable",
              verdict="holds (torch.optim's steps follow the rule; alpha sets the weighting)",
              evidence=own("update-rule-rmsprop")),
    Statement(name="rmsprop-global-optimum", section="2-3",
              ja="（RMSProp）局所最適解にならず大域的最適解となる",
              en="RMSProp does not stop at a local optimum; it reaches the global one",
              verdict="does not hold: RMSProp ends in the global minimum no more often than SGD",
              evidence=own("well-rmsprop"), figure=(OWN, "double well")),
    Statement(name="rmsprop-easy-to-tune", section="2-3",
              ja="（RMSProp）ハイパーパラメータの調整が楽",
              en="RMSProp is easy to tune",
              verdict="does not hold as a distinction: its learning-rate window is no wider than the others' (quick, "
                      "10 seeds: 4th of 5, only SGD's narrower; full: the narrowest of the five)",
              evidence=own("rmsprop-window"), figure=(OWN, "window")),
    Statement(name="adam-rule", section="2-4",
              ja="（Adam）モメンタムとRMSProp両方の概要を含む／モメンタム：過去の勾配の指数関数的減衰平均",
              en="Adam combines both: a decaying mean of past gradients (momentum) over RMSProp's root mean square",
              verdict="holds (torch.optim's steps follow the rule)",
              evidence=own("update-rule-adam")),
    Statement(name="adam-merits-of-both", section="2-4",
              ja="（Adam）モメンタムとRMSPropのメリットを含む",
              en="Adam has the merits of both Momentum and RMSProp",
              verdict="does not hold as a rule: Adam is the best of the three on the double well and close to the "
                      "better one on MNIST, but the slowest on the valley and the rotated saddle",
              evidence=own("adam-vs-momentum-rmsprop-well", "adam-vs-momentum-rmsprop-valley", "adam-vs-momentum-rmsprop-saddle", "adam-vs-momentum-rmsprop-mnist"),
              figure=(OWN, "valley")),
    Statement(name="overfitting-definition", section="3",
              ja="過学習とは、テスト誤差と訓練誤差で学習曲線が乖離すること（特定の訓練サンプルに対して、特化して学習する）",
              en="Overfitting: the train and test curves part (the net specialises in its training samples)",
              verdict="holds",
              evidence=regularization("book-memorises", "book-gap-large"),
              figure=("regularization", "book setting: train")),
    Statement(name="overfitting-cause-freedom", section="3",
              ja="原因はパラメータの数が多い、パラメータの値が適切でない、ノードが多いなどが考えられ、つまりネットワークの自由度（層数、ノード数、パラメータの値etc）が高いことである",
              en="Its cause is too much freedom: many parameters, nodes, unsuitable values",
              verdict="holds under conditions: a 1 x 16 net leaves a narrower gap, but it also fits fewer training "
                      "images; 300 images are overfitted by both",
              evidence=own("capacity-narrows-gap"), figure=(OWN, "overfitting")),
    Statement(name="regularisation-suppresses-overfitting", section="3",
              ja="正則化とは、ネットワークの自由度を制約することである。これによって過学習を抑制する",
              en="Regularisation restricts the freedom and so suppresses overfitting",
              verdict="holds under conditions: it narrows the gap; it raises test accuracy where there is data to "
                      "generalise from (dropout paper), in the book's 300-image setting mostly by lowering train "
                      "accuracy",
              evidence=regularization("l2-narrows-gap", "dropout-narrows-gap", "paper-dropout-raises-test")),
    Statement(name="overfitting-large-weights", section="3",
              ja="過学習の原因としては重みが大きい値を取ることである。よって…正則化項を加算することで、重みが大きい値を取りすぎないように重みを抑制する",
              en="Overfitting comes from large weights, so a penalty term keeps them small",
              verdict="holds under conditions: the penalty works (L2 narrows the gap); that large weights are the "
                      "cause is not isolated here",
              evidence=regularization("l2-train-below-100", "l2-narrows-gap")),
    Statement(name="l1-definition", section="3-1",
              ja="誤差関数にpノルムという正則化項を加える…l1ノルム：重みの絶対値の和",
              en="L1 adds the sum of |w| to the loss",
              verdict="holds (definition)",
              evidence=own("l1-norm")),
    Statement(name="l2-definition", section="3-1",
              ja="l2ノルム：重みのユークリッド距離のようなもの（を2で割る）",
              en="L2: something like the Euclidean length of the weights, halved",
              verdict="holds under conditions: the term is half the squared length, 0.5 * sum w^2 (its gradient is w), "
                      "not the length",
              evidence=own("l2-gradient")),
    Statement(name="l1-sparsity", section="3-1",
              ja="（l1正則化）スパース性があることが特徴",
              en="L1's mark is sparsity",
              verdict="holds under conditions: the subgradient penalty gives near-zero weights; exact zeros need a "
                      "proximal step",
              evidence=regularization("l1-near-zero-weights", "proximal-l1-exact-zeros"),
              figure=("regularization", "first-layer weights")),
    Statement(name="l2-gradient", section="3-1",
              ja="l2ノルムの勾配は2*paramになるが、係数2は正則化の係数に吸収されても変わらないので、paramが正解",
              en="L2's gradient is 2 * param; the 2 goes into the coefficient, so param",
              verdict="holds",
              evidence=own("l2-gradient", "l2-step")),
    Statement(name="l1-gradient", section="3-1",
              ja="l1ノルムの勾配は符号関数（sign（param))になる",
              en="L1's gradient is sign(param)",
              verdict="holds (0 at exactly 0)",
              evidence=own("l1-gradient")),
    Statement(name="many-nodes-overfit", section="3-2",
              ja="NNのノード数が多いとネットワークの自由度が上がり、過学習に陥りやすい",
              en="Many nodes mean freedom and overfitting",
              verdict="holds under conditions: a 1 x 16 net leaves a narrower gap, but it also fits fewer training "
                      "images; 300 images are overfitted by both",
              evidence=own("capacity-narrows-gap"), figure=(OWN, "overfitting")),
    Statement(name="dropout-definition", section="3-2",
              ja="ドロップアウトでは、NNのノード数をランダムに削除して学習させる",
              en="Dropout deletes random nodes during training",
              verdict="holds (one mask drops a share p; eval mode drops none)",
              evidence=own("dropout-mask-share")),
    Statement(name="dropout-as-ensemble", section="3-2",
              ja="データ量を変化させなくても、異なるモデルを学習させていると解釈できる",
              en="Dropout can be read as training different models without changing the data",
              verdict="holds: each mask is a thinned net, less accurate alone; averaging many masks reproduces the "
                      "scaled net's accuracy and predictions",
              evidence=own("dropout-ensemble-accuracy", "dropout-ensemble-agreement", "single-mask-less-accurate"),
              figure=(OWN, "dropout")),
    Statement(name="cnn-heading", section="4",
              ja="（見出しのみ）畳み込みニューラルネットワークの概念",
              en="Section 4: CNN concepts (heading only)",
              verdict="not testable here: the notes have no statement (make exp-cnn checks the convolution itself)"),
    Statement(name="modern-cnn-heading", section="5",
              ja="（見出しのみ）最新のCNN",
              en="Section 5: modern CNNs (heading only)",
              verdict="not testable here: the notes have no statement (make exp-modern-cnn trains them)"),
]

# The paper behind a statement (by its name): the claims of that paper's experiment that reproduce its
# evidence. Shown beside the notes' own evidence; never part of the verdict.
PAPERS_BEHIND = {
    "vanishing-gradients": glorot2010("backprop-variance-shrinks-standard", "sigmoid-stalls")
                           + he2015("deep-30-xavier-stalls"),
    "sigmoid-tail-vanishes": glorot2010("sigmoid-top-layer-saturates"),
    "relu-avoids-vanishing": he2015("deep-30-he-trains"),
    "activations-spread-out": glorot2010("sigmoid-top-layer-saturates", "sigmoid-stalls"),
    "xavier-layers-differ": glorot2010("backprop-variance-kept-normalized", "jacobian-normalized"),
    "xavier-suits-sigmoid-tanh": glorot2010("jacobian-standard", "jacobian-normalized", "tanh-softsign-learn"),
    "he-layers-differ": he2015("signal-he-kept", "deep-30-he-trains"),
    "he-is-xavier-doubled": he2015("signal-xavier-theory", "deep-22-he-earlier", "deep-30-xavier-stalls"),
    "bn-curbs-drift": ioffe2015("bn-inputs-stay"),
    "bn-faster": ioffe2015("bn-faster", "bn-ends-higher"),
    "bn-init-insensitive": ioffe2015("bn-insensitive-to-settings"),
    "per-parameter-rates": kingma2015("logreg-adam-like-nesterov", "mlp-adam-best"),
    "momentum-faster-in-valley": sutskever2013("momentum-trains-where-sgd-stalls", "nag-beats-cm-at-high-momentum"),
    "adam-rule": kingma2015("bias-correction-first-step"),
    "adam-merits-of-both": kingma2015("mlp-adam-best", "logreg-adam-like-nesterov"),
    "regularisation-suppresses-overfitting": srivastava2014("dropout-beats-none", "dropout-beats-l2"),
    "dropout-definition": srivastava2014("dropout-beats-none"),
    "dropout-as-ensemble": srivastava2014("mc-matches-scaling", "mc-one-sample-worse"),
}
STATEMENTS = [replace(s, papers=PAPERS_BEHIND.get(s.name, ())) for s in STATEMENTS]


# ---- judging: evidence from results files, one row per statement ----

@dataclass(frozen=True)
class Source:
    """What one experiment's results offer the audit: the preset they were run at, the claims, the figures."""
    preset: str
    claims: list                             # repro.claims.Claim
    figures: dict = field(default_factory=dict)   # title -> PNG name

    @classmethod
    def of(cls, run: Run) -> "Source":
        return cls(run.preset, run.claims, run.extras.get("figures") or {})


def read_source(layout: Layout, experiment: str, preset: str) -> Source | None:
    """results/<experiment>/<preset>.json, else that experiment's full, cpu (a paper's), else quick
    results; None if none can be read."""
    path = layout.find(experiment, preset, fallbacks=("full", "cpu", "quick"))
    if path is None:
        return None
    try:
        return Source.of(load(path))
    except ResultsError:
        return None


def _number(x) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def judge(statement: Statement, sources: dict[str, Source | None]) -> tuple[str, list[str]]:
    """(verdict, evidence lines) for one statement; sources maps experiment -> its Source (or None)."""
    if not statement.evidence:
        return statement.verdict, []
    lines, missing, failing, absent, unjudged = [], [], [], [], []
    for experiment, key in statement.evidence:
        source = sources.get(experiment)
        if source is None:
            missing.append(experiment)
            lines.append(f"{experiment}: {key}: not run")
            continue
        found: list[Claim] = [c for c in source.claims if c.id == key]
        if not found:
            absent.append(f"claim '{key}' not in {experiment}/{source.preset} results (re-run make exp-{experiment})")
        for c in found:
            outcome = verdict(c)
            mark = {HOLDS: "✓", FAILS: "✗", NOT_JUDGED: f"not judged (needs {c.needs})"}[outcome]
            detail = f" [{c.detail}]" if c.detail else ""
            lines.append(f"{experiment}/{source.preset}: {key}: {_number(c.measured)} ({c.bound}) {mark}{detail}")
            if outcome == FAILS:
                failing.append(f"{experiment}: {c.statement} measured {_number(c.measured)}, needs {c.bound}")
            elif outcome == NOT_JUDGED:
                unjudged.append(f"{experiment}: {c.statement} needs {c.needs}")
    if missing:
        return "not run yet: " + ", ".join(f"make exp-{e}" for e in dict.fromkeys(missing)), lines
    if absent or failing:
        return "not confirmed: " + "; ".join(absent + failing), lines
    if unjudged:
        return "not judged at this preset: " + "; ".join(unjudged), lines
    return statement.verdict, lines


def _figure_link(statement: Statement, sources: dict[str, Source | None]) -> str:
    """A link that works from reports/REPORT.md: the named figure as the report copies it, else the
    section of the first experiment with evidence."""
    if statement.figure:
        experiment, key = statement.figure
        source = sources.get(experiment)
        listed = source.figures if source is not None else {}
        path = next((p for title, p in listed.items() if key.lower() in title.lower()), None)
        if path:
            return f"[figure](figures/{experiment}/{Path(path).name})"
    if statement.evidence:
        return f"[{statement.evidence[0][0]}](#{statement.evidence[0][0]})"
    return "-"


def _paper_lines(statement: Statement, sources: dict[str, Source | None]) -> list[str]:
    """The paper behind a statement, linked to its section of the report, with its claims' values."""
    if not statement.papers:
        return []
    verdict, lines = judge(replace(statement, evidence=statement.papers, verdict="holds"), sources)
    names = ", ".join(f"[{e}](#{e})" for e in dict.fromkeys(e for e, _ in statement.papers))
    return [f"{names}: {verdict}"] + lines


def audit(own_claims: list[Claim], layout: Layout, preset: str, own_figures: dict) -> list[dict]:
    """One row per statement; ``own_claims`` are this audit's claims, ``own_figures`` its figures, ``layout``
    where the other experiments' results are."""
    experiments = {e for s in STATEMENTS for e, _ in s.evidence + s.papers} - {OWN}
    sources = {e: read_source(layout, e, preset) for e in sorted(experiments)}
    sources[OWN] = Source(preset, own_claims, own_figures)
    matrix = read_matrix(layout, preset)   # python -m repro generalise, if it has run at this preset
    rows = []
    for number, s in enumerate(STATEMENTS, start=1):
        verdict, lines = judge(s, sources)
        rows.append({"number": number, "name": s.name, "section": s.section, "statement": s.en, "original": s.ja,
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

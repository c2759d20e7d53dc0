"""What each rule is called in a derivation, in English and Chinese (the notes' own terms)."""
from __future__ import annotations

LANGS = ("en", "zh")

# rule name (or family) -> (English, Chinese)
RULES: dict[str, tuple[str, str]] = {
    "d-sum": ("sum rule", "加减法则"),
    "d-product": ("product rule", "乘法法则"),
    "d-scalar": ("product rule (scalar factor)", "乘法法则（标量因子）"),
    "d-hadamard": ("Hadamard product rule", "逐元素乘法法则"),
    "d-transpose": ("transpose rule", "转置法则"),
    "d-power": ("power rule", "幂法则"),
    "d-trace": ("trace rule", "迹法则"),
    "d-inverse": ("inverse rule", "逆矩阵法则"),
    "d-det": ("determinant rule", "行列式法则"),
    "d-logdet": ("log-determinant rule", "对数行列式法则"),
    "d-sum-all": ("sum of entries is linear", "求和是线性的"),
    "d-norm2": ("norm rule", "范数法则"),
    "d-norm1": ("1-norm rule", "1-范数法则"),
    "d-diag": ("diag is linear", "diag 是线性的"),
    "d-group": ("named step", "中间变量"),
    "elementwise": ("elementwise rule", "逐元素函数法则"),
    "scalar-trace": ("scalar equals its trace", "标量套上迹"),
    "chain": ("chain rule: the step's differential under its delta", "链式法则：代入中间变量的微分"),
    "linearity": ("linearity", "迹的线性"),
    "collect": ("linearity (collect terms)", "迹的线性（合并同类项）"),
    "cyclic-left": ("cyclic property", "迹的循环性质"),
    "cyclic-right": ("cyclic property", "迹的循环性质"),
    "scalar-out": ("scalar moves out", "提出标量"),
    "scalar-in": ("scalar factor: its own trace", "标量因子套上迹"),
    "transpose": ("transpose", "迹的转置"),
    "hadamard-swap": ("Hadamard swap", "矩阵乘法/逐元素乘法交换"),
    "trace": ("trace of a trace", "迹的迹"),
    "sum-all": ("sum as a trace", "求和写成迹"),
    "diag": ("diag swap", "diag 交换"),
    "group": ("named step", "中间变量"),
    "gradient-form": ("df = tr(G' dX): G is the gradient", "对照 df = tr(G' dX) 得到梯度"),
    "simplify": ("simplify", "化简"),
}

ELEMENTWISE_RULES = {"d-exp", "d-log", "d-sqrt", "d-sin", "d-cos", "d-tanh", "d-sigmoid", "d-relu", "d-abs",
                     "d-sign", "d-step", "d-softplus", "d-softmax", "d-log-softmax", "d-logsumexp"}

# connecting words of the printed derivation
WORDS: dict[str, tuple[str, str]] = {
    "loss": ("loss", "损失"),
    "steps": ("steps", "中间变量"),
    "differential": ("differential", "微分"),
    "trace": ("trace tricks", "迹技巧"),
    "gradient": ("gradient", "梯度"),
    "check": ("check", "验证"),
    "layout": ("layout", "布局"),
    "where": ("where", "其中"),
    "result": ("result", "结果"),
}


def rule_label(rule: str, lang: str = "en") -> str:
    """The name a reader knows a rule by; simplification rules are named by their own label."""
    i = LANGS.index(lang)
    if rule in ELEMENTWISE_RULES:
        return RULES["elementwise"][i]
    if rule in RULES:
        return RULES[rule][i]
    words = rule.replace("-", " ")
    return words if lang == "en" else f"{RULES['simplify'][1]}：{words}"


def word(key: str, lang: str = "en") -> str:
    return WORDS[key][LANGS.index(lang)]

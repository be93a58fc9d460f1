"""Explicit severity signals of a review, in English, German, Spanish, French, Portuguese,
Italian and Japanese: the documented rules every local model applies on top of its learned
urgency head.

Five kinds, each a list of phrase patterns per language:

* `crash`: the app crashes, freezes, closes itself or will not open;
* `payment`: a charge went wrong (charged twice, payment failed, money taken, no refund);
* `data_loss`: the user's data is gone (lost, deleted, disappeared);
* `security`: an account was hacked, someone else got in, other people's data is shown;
* `lockout`: the user cannot log in or the account is locked.

Rules (`apply_signals`):

* any signal raises the urgency to at least High (a learned Critical stays Critical);
* `data_loss` or `security` raise it to Critical;
* a `crash` or `data_loss` review is never Praise or Other: it becomes a Bug Report.

A negated mention ("never crashes", "no crashes at all", "stürzt nie ab") is not a signal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "SIGNAL_KINDS",
    "apply_signals",
    "severity_signals",
    "signal_spans",
    "urgency_floor",
]

SIGNAL_KINDS: tuple[str, ...] = ("crash", "payment", "data_loss", "security", "lockout")

_NEGATION = (
    r"(?:\bno\b|\bnot\b|\bnever\b|\bwithout\b|\bzero\b|n't\b|\bnie\b|\bkein\w*|\bohne\b|\bnunca\b"
    r"|\bsin\b|\bjamais\b|\bsans\b|\bsem\b|\bnão\b|\bsenza\b|\bmai\b)"
)

_PATTERNS: dict[str, Sequence[str]] = {
    "crash": (
        # en
        r"\bcrash\w*",
        r"\bfreez\w*",
        r"\bfroze\b",
        r"\bforce[- ]?clos\w*",
        r"\b(?:won'?t|doesn'?t|does not|will not|can'?t|cannot) (?:even )?(?:open|start|launch|load)\b",  # noqa: E501
        r"\b(?:keeps|kept) (?:closing|shutting down|quitting)\b",
        r"\bcloses (?:itself|by itself|immediately|on (?:its|it's) own)\b",
        r"\b(?:white|black|blank) screen\b",
        r"\bstuck on (?:the )?(?:loading|splash)\b",
        # de
        r"\bstürzt\b",
        r"\babsturz\w*",
        r"\babgestürzt\b",
        r"\bfriert\b",
        r"\bhängt sich auf\b",
        r"\b(?:öffnet|startet|lädt) (?:sich )?nicht\b",
        r"\b(?:schließt|beendet) (?:sie |die app )?sich\b",  # "schließt sich sofort wieder"
        # es
        r"\bse (?:cierra|bloquea|cuelga|congela)\w*",
        r"\bno (?:se )?(?:abre|inicia|carga)\b",
        r"\bcierra sola\b",
        # fr
        r"\bplant(?:e|é|ée|ent)\b",
        r"\bcrash\w*",
        r"\bse ferme\b",
        r"\bfig(?:e|é|ée)\b",
        r"\bne (?:s'|se )?(?:ouvre|démarre|lance|charge) (?:plus|pas)\b",
        # pt
        r"\btrav(?:a|am|ou|ar|ando|ad[oa]s?)\b",  # not French "travail"
        r"\bfecha sozinh[oa]\b",
        r"\bnão (?:abre|inicia|carrega)\b",
        r"\bfechando sozinh[oa]\b",
        # it
        r"\bsi (?:chiude|blocca|pianta)\w*",
        r"\bnon (?:si )?(?:apre|avvia|parte|carica)\b",
        # ja (no word boundaries)
        r"落ち(?!ない|ません|なく)",
        r"クラッシュ",
        r"強制終了",
        r"フリーズ",
        r"固ま(?:る|っ|り)",
        r"(?:起動|開|ひら)(?:か|き|け)?(?:しない|ない|ません|できない)",
    ),
    "payment": (
        r"\bcharged (?:me )?(?:twice|two times|double|again|\d+ times)\b",
        r"\bdouble[- ]charg\w*",
        r"\bovercharg\w*",
        r"\b(?:payment|purchase|checkout|transaction)s? (?:failed|fails|failing|declined|went through twice)\b",  # noqa: E501
        r"\b(?:failed|declined) (?:payment|purchase|transaction)\b",
        r"\b(?:can'?t|cannot|unable to) (?:pay|check ?out|complete (?:the|my) (?:payment|purchase))\b",  # noqa: E501
        r"\bcharged\b.{0,40}\b(?:but|never|no|didn'?t|not)\b",
        r"\b(?:took|taken|deducted|stole) (?:my )?money\b",
        r"\bmoney (?:was )?(?:taken|deducted|gone)\b",
        r"\b(?:no|still waiting for (?:a|my)|never (?:got|received) (?:a|my)) refund\b",
        r"\bwhy (?:was|am|did|have) i (?:get |got |been )?(?:charged|billed)\b",
        r"\brefus\w* (?:to |a |my )?refund",
        r"\b(?:purchase|subscription|charge|payment|order|sticker pack|\w+) in my (?:history|account"  # noqa: E501
        r"|statement) that i (?:never|didn'?t) (?:made|make|order\w*|buy|bought)\b",
        r"\b(?:can'?t|cannot|unable to) cancel (?:the |my )?subscription\b",
        r"\bcancel\w* (?:the |my )?subscri\w* is\b.{0,30}\bhidden\b",
        # de
        r"\b(?:doppelt|zweimal) (?:abgebucht|belastet|bezahlt|berechnet)\b",
        r"\bzahlung\w* (?:fehlgeschlagen|geht nicht|funktioniert nicht)\b",
        r"\bgeld (?:abgebucht|weg)\b",
        # es
        r"\bcobr\w* (?:dos veces|doble)\b",
        r"\bcobro doble\b",
        r"\b(?:el )?pago (?:falla|fall[óo]|no funciona|rechazado)\b",
        # fr
        r"\bdébité\w* deux fois\b",
        r"\bpaiement (?:échoue|a échoué|refusé|ne fonctionne pas)\b",
        r"\bprélevé\w* deux fois\b",
        # pt
        r"\bcobrad[oa]s? (?:duas vezes|em dobro)\b",
        r"\bpagamento (?:falhou|falha|não funciona|recusado)\b",
        # it
        r"\baddebitat[oi] due volte\b",
        r"\bpagamento (?:fallito|non funziona|rifiutato)\b",
        r"\bdoppio addebito\b",
        # ja
        r"(?:二重|二回|2回|２回)(?:請求|決済|課金)",
        r"(?:決済|支払い|課金)(?:が|に)?(?:失敗|できない|できません)",
    ),
    "data_loss": (
        r"\b(?:lost|deleted|erased|wiped)\b(?: out)? (?:all )?(?:of )?(?:my|our|the)\b",
        r"\b(?:all )?my \w+(?: \w+)? (?:(?:are|is|were|was|has|have) )?(?:gone|disappeared|vanished|deleted|wiped)\b",  # noqa: E501
        r"\bdata loss\b",
        # de
        r"\b(?:alle|meine) \w+ (?:sind |ist )?(?:weg|verloren|gelöscht|verschwunden)\b",
        r"\b(?:verloren|gelöscht)\b",
        # es
        r"\bperd[íi]\w* (?:todo|todas|todos|mis)\b",
        r"\bse (?:me |te |nos |le |les )?(?:borr|elimin)(?:ó|aron)\b",
        r"\bdesaparec(?:ió|ieron)\b",
        # fr
        r"\bj'ai perdu\b",
        r"\b(?:effacé|supprimé|disparu)e?s?\b",
        # pt
        r"\bperdi (?:todos|todas|meus|minhas|tudo)\b",
        r"\b(?:sumiram|sumiu|apagou|apagaram)\b",
        # it
        r"\bho perso\b",
        r"\b(?:cancellat|spariti|sparite|scompars)\w*",
        # ja
        r"(?:データ|写真|記録|履歴|メモ)?が?(?:消え|消去|削除され)",
    ),
    "security": (
        r"\bhack\w*",
        r"\bunauthori[sz]ed\b",
        r"\b(?:security|privacy) (?:hole|issue|bug|breach|flaw|problem)\b",
        r"\bdata breach\b",
        r"\bsomeone (?:else )?(?:logged|got) into my\b",
        r"\b(?:other|another) (?:people'?s|users?'?s?|person'?s) (?:data|orders?|messages?|accounts?|details|info\w*)\b",  # noqa: E501
        r"\bpassword (?:is )?(?:shown|visible|leaked|exposed|in plain text)\b",
        r"\b(?:stolen|compromised) account\b|\baccount (?:was )?(?:stolen|compromised)\b",
        # de
        r"\bgehackt\b",
        r"\bsicherheitslücke\b",
        r"\bdaten (?:anderer|fremder)\b",
        # es
        r"\bhacke\w*",
        r"\b(?:problema|fallo|agujero) de seguridad\b",
        # fr
        r"\bpiraté\w*",
        r"\bfaille de sécurité\b",
        # pt
        r"\b(?:hackead|invadid)[oa]\b",
        r"\bfalha de segurança\b",
        # it
        r"\bhackerat\w*",
        r"\b(?:falla|problema) di sicurezza\b",
        # ja
        r"乗っ取ら",
        r"不正(?:ログイン|アクセス|利用)",
        r"情報漏",
    ),
    "lockout": (
        r"\b(?:can'?t|cannot|can not|unable to|could ?n'?t|won'?t let me) (?:log ?in|login|sign ?in|access my account|get into my account)\b",  # noqa: E501
        r"\blocked out\b",
        r"\baccount (?:is |was |got |has been )?(?:locked|suspended|blocked|disabled)\b",
        r"\b(?:login|log in|sign in|sign-in) (?:fails|failed|doesn'?t work|does not work|broken|error)\b",  # noqa: E501
        r"\bpassword reset (?:doesn'?t|does not|never) \w+",
        # de
        r"\bkann mich nicht (?:mehr )?(?:anmelden|einloggen)\b",
        r"\b(?:konto|account) (?:ist |wurde )?gesperrt\b",
        r"\b(?:login|anmeldung) (?:geht|funktioniert) nicht\b",
        # es
        r"\bno puedo (?:iniciar sesión|entrar|acceder)\b",
        r"\bcuenta (?:bloqueada|suspendida)\b",
        # fr
        r"\b(?:impossible de|je ne peux (?:pas|plus)) (?:me )?(?:connecter|identifier)\b",
        r"\bcompte (?:bloqué|suspendu)\b",
        # pt
        r"\bnão consigo (?:entrar|logar|fazer login|acessar)\b",
        r"\bconta (?:bloqueada|suspensa)\b",
        # it
        r"\bnon riesco (?:ad? )?(?:accedere|entrare|fare il login)\b",
        r"\baccount (?:bloccato|sospeso)\b",
        # ja
        r"ログイン(?:が)?(?:できない|できません|出来ない|出来ません)",
        r"アカウント(?:が)?(?:ロック|凍結|停止)",
    ),
}


# One pass over the lower-cased text: every pattern of every kind in one alternation, each
# kind a named group.
def _combined() -> re.Pattern[str]:
    # Patterns that start at a word boundary share one leading \b (most text positions fail
    # it at once); the Japanese ones, with no word boundaries, follow.
    latin: list[str] = []
    other: list[str] = []
    for kind, pats in _PATTERNS.items():
        bounded = [p.removeprefix(r"\b") for p in pats if p.startswith(r"\b")]
        rest = [p for p in pats if not p.startswith(r"\b")]
        latin.append(f"(?P<{kind}>" + "|".join(f"(?:{p})" for p in bounded) + ")")
        if rest:
            other.append(f"(?P<{kind}_x>" + "|".join(f"(?:{p})" for p in rest) + ")")
    return re.compile(r"\b(?:" + "|".join(latin) + ")|" + "|".join(other))


_COMBINED = _combined()
_NEGATION_RE = re.compile(_NEGATION + r"(?:\W+\w+){0,2}\W*$")
_NEGATED_AFTER_RE = re.compile(r"\s*(?:nie|nicht|nimmer|never)\b")

_URGENCY_ORDER = ("Low", "Medium", "High", "Critical")


def signal_spans(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of each signal in `text` that is not negated, in reading order."""
    low = text.lower()
    out: list[tuple[str, int, int]] = []
    for match in _COMBINED.finditer(low):
        start, end = match.span()
        if _NEGATION_RE.search(low, max(0, start - 30), start) or _NEGATED_AFTER_RE.match(
            low, end, end + 12
        ):
            continue
        out.append((str(match.lastgroup).removesuffix("_x"), start, end))
    return out


def severity_signals(text: str) -> frozenset[str]:
    """The signal kinds present in `text` (not negated)."""
    return frozenset(kind for kind, _, _ in signal_spans(text))


def urgency_floor(signals: frozenset[str]) -> str | None:
    """The least urgency the signals allow (None when there is none)."""
    if signals & {"data_loss", "security"}:
        return "Critical"
    if signals:
        return "High"
    return None


def apply_signals(
    category: str, urgency: str, signals: frozenset[str], categories: Sequence[str]
) -> tuple[str, str]:
    """(category, urgency) after the rules in the module docstring."""
    floor = urgency_floor(signals)
    if (
        floor is not None
        and urgency in _URGENCY_ORDER
        and _URGENCY_ORDER.index(urgency) < _URGENCY_ORDER.index(floor)
    ):
        urgency = floor
    if (
        signals & {"crash", "data_loss"}
        and category in ("Praise", "Other")
        and "Bug Report" in categories
    ):
        category = "Bug Report"
    return category, urgency

"""Explicit severity signals of a review, in English, German, Spanish, French, Portuguese,
Italian and Japanese: the documented rules every local model applies on top of its learned
urgency head.

Seven kinds, each a list of phrase patterns per language:

* `crash`: the app crashes, freezes, closes itself or will not open;
* `payment`: a payment went wrong (payment failed or declined, no refund, a charge the user
  cannot explain);
* `money_lost`: the user's money is gone (charged twice, charged but nothing received, money
  taken);
* `data_loss`: the user's data is gone (lost, deleted, disappeared, reset to zero);
* `security`: an account was hacked or taken over, someone else got in, other people's data
  is shown;
* `outage`: the service is down for everyone (servers down, nobody can log in);
* `lockout`: the user cannot log in or the account is locked.

Rules (`apply_signals`):

* any signal raises the urgency to at least High (a learned Critical stays Critical);
* `money_lost`, `data_loss`, `security` or `outage` raise it to Critical (`FLOORS`);
* a `crash`, `data_loss` or `outage` review is never Praise or Other: it becomes a Bug Report.

A negated mention ("never crashes", "no crashes at all", "stürzt nie ab") is not a signal.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Sequence
from typing import Any

import ahocorasick_rs

__all__ = [
    "FLOORS",
    "SIGNAL_KINDS",
    "apply_signals",
    "severity_signals",
    "signal_spans",
    "urgency_floor",
]

SIGNAL_KINDS: tuple[str, ...] = (
    "money_lost",
    "data_loss",
    "security",
    "outage",
    "crash",
    "payment",
    "lockout",
)
# The least urgency each kind allows.
FLOORS: dict[str, str] = {
    "crash": "High",
    "payment": "High",
    "lockout": "High",
    "money_lost": "Critical",
    "data_loss": "Critical",
    "security": "Critical",
    "outage": "Critical",
}
# Kinds that make a review a Bug Report even when the learned head says Praise or Other.
_BUG_KINDS = frozenset({"crash", "data_loss", "outage"})

_NEGATION = (
    r"(?:\bno\b|\bnot\b|\bnever\b|\bwithout\b|\bzero\b|n't\b|\bnie\b|\bkein\w*|\bohne\b|\bnunca\b"
    r"|\bsin\b|\bjamais\b|\bsans\b|\bsem\b|\bnão\b|\bsenza\b|\bmai\b)"
)

# In order of precedence: where patterns of two kinds match at the same place, the first
# kind's (the more severe) is the one found.
_PATTERNS: dict[str, Sequence[str]] = {
    "money_lost": (
        r"\b(?:charged|billed) (?:me )?(?:twice|two times|three times|double|again|\d+ times|multiple times)\b",  # noqa: E501
        r"\b(?:was|were|got|been) (?:charged|billed) \w+ times\b",
        r"\bdouble[- ](?:charg|bill)\w*",
        r"\b(?:payment|transaction|purchase)s? went through (?:twice|two times)\b",
        r"\b(?:charged|billed|paid)\b.{0,40}\b(?:but|never|didn'?t|not)\b.{0,30}\b(?:arrived|received|got|get|went through|delivered|show\w*)\b",  # noqa: E501
        r"\b(?:failed|declined|error\w*)\b.{0,40}\b(?:(?:still|yet)\b.{0,15}\b(?:charged|billed|debited|taken)|(?:charged|billed|debited) anyway)\b",  # noqa: E501
        r"\b(?:took|taken|deducted|stole) (?:my )?money\b",
        r"\bmoney (?:was |is |has been )?(?:taken|deducted|gone|left my account)\b",
        r"\bmoney left my (?:account|card)\b",
        # de
        r"\b(?:doppelt|zweimal|dreimal|mehrfach) (?:abgebucht|belastet|bezahlt|berechnet)\b",
        r"\bgeld (?:ist |wurde )?(?:abgebucht|weg)\b",
        r"\bgeld (?:ist )?trotzdem weg\b",
        # es
        r"\bcobr\w* (?:dos veces|doble|tres veces|de más)\b",
        r"\bcobro doble\b",
        r"\b(?:el )?dinero (?:ya )?(?:salió|se descontó|desapareció)\b",
        # fr
        r"\b(?:débité|prélevé|facturé)\w* (?:deux|trois) fois\b",
        r"\bl'argent (?:a été |est )?(?:prélevé|débité|parti)\b",
        # pt
        r"\bcobrad[oa]s? (?:duas vezes|em dobro|três vezes)\b",
        r"\bdinheiro (?:saiu|sumiu|foi descontado)\b",
        # it
        r"\baddebitat[oiae] (?:due|tre) volte\b",
        r"\bdoppio addebito\b",
        r"\bsoldi (?:sono stati |mi sono stati )?(?:prelevati|addebitati|spariti)\b",
        # ja
        r"(?:二重|二回|2回|２回|三回|3回)も?(?:請求|決済|課金|引き落とし)",
        r"お金(?:だけ)?(?:が|は)?引き落とされ",
    ),
    "data_loss": (
        r"\b(?:lost|deleted|erased|wiped)\b(?: out)? (?:all )?(?:of )?(?:my|our|the)\b",
        r"\b(?:all )?my \w+(?: \w+)? (?:(?:are|is|were|was|has|have|got|get) )?(?:(?:been|all) )?(?:gone|disappeared|vanished|deleted|wiped|erased|lost)\b",  # noqa: E501
        r"\b(?:every|all|everything)\b(?:\s+(?!nothing\b|not\b|no\b)[\w']+){0,6}\s+(?:is|are|was|were|got|has been|have been) (?:all )?(?:gone|missing|deleted|wiped|erased|empty|lost)\b(?! (?:a|an|the|some)\b)",  # noqa: E501
        r"\b(?:progress|streak|data|history|account) (?:was |got |has been |have been )?(?:reset to zero|wiped|erased)\b",  # noqa: E501
        r"\bdata loss\b",
        # de
        r"\b(?:alle|meine|sämtliche) (?:\w+ ){0,2}(?:sind|ist|waren|wurden) (?:\w+ ){0,4}(?:weg|verloren|gelöscht|verschwunden)\b",  # noqa: E501
        r"\b(?:verloren|gelöscht)\b",
        # es
        r"\bperd[íi]\w* (?:todo|todas|todos|mis)\b",
        r"\bse (?:me |te |nos |le |les )?(?:borr|elimin)(?:ó|aron)\b",
        r"\b(?:borró|eliminó) (?:todos|todas|mis)\b",
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
        r"(?:すべて|全部|全て)(?:が)?なくな",
    ),
    "security": (
        r"\bhack\w*",
        r"\bunauthori[sz]ed\b",
        r"\b(?:security|privacy) (?:hole|issue|bug|breach|flaw|problem)\b",
        r"\bdata breach\b",
        r"\bsomeone (?:else )?(?:logged|got) into my\b",
        r"\bsomeone (?:else )?(?:changed|reset) my (?:password|email|phone number|pin)\b",
        r"\b(?:took|taken|take) over my account\b|\baccount (?:was |got )?taken over\b",
        r"\baccount takeover\b",
        r"\blog ?in (?:alert|attempt|notification)s? from (?:another|a different|an unknown|a foreign)\b",  # noqa: E501
        r"\b(?:other|another) (?:people'?s|users?'?s?|person'?s|customers?'?s?|patient'?s) (?:data|orders?|messages?|accounts?|details|info\w*|\w+)\b",  # noqa: E501
        r"\bsomeone else'?s (?:name|details|data|account|orders?|messages?|info\w*)\b",
        r"\bstranger'?s (?:account|data|details|messages?)\b",
        r"\bpassword (?:is )?(?:shown|visible|leaked|exposed|in plain text)\b",
        r"\b(?:stolen|compromised) account\b|\baccount (?:was )?(?:stolen|compromised)\b",
        # de
        r"\bgehackt\b",
        r"\bsicherheitslücke\b",
        r"\bdaten (?:anderer|fremder)\b",
        r"\bjemand hat (?:mein|meine) (?:passwort|konto|e-mail)\b",
        # es
        r"\bhacke\w*",
        r"\b(?:problema|fallo|agujero) de seguridad\b",
        r"\bdatos de otr[oa]s?\b",
        # fr
        r"\bpiraté\w*",
        r"\bfaille de sécurité\b",
        r"\bdonnées d'(?:une? )?autres?\b",
        # pt
        r"\b(?:hackead|invadid)[oa]\b",
        r"\bfalha de segurança\b",
        r"\bdados de outr[oa]s?\b",
        # it
        r"\bhackerat\w*",
        r"\b(?:falla|problema) di sicurezza\b",
        r"\bdati di (?:un')?altr[aie]\b",
        # ja
        r"乗っ取ら",
        r"不正(?:ログイン|アクセス|利用)",
        r"情報漏",
        r"他人の(?:情報|データ|名前|アカウント)",
    ),
    "outage": (
        r"\b(?:service|server|servers|site|website|platform|system|everything|the app|app) (?:is|are|was|were|has been|have been|went|goes|seems?) (?:completely |totally |all |still )?(?:down|offline)\b",  # noqa: E501
        r"\b(?:outage|outages)\b",
        r"\bdown for (?:everyone|everybody|all (?:of )?(?:us|users))\b",
        r"\b(?:nobody|no one|noone|none of us)\b(?: \w+){0,4} (?:can|could|is able to|are able to|can'?t|cannot) (?:log ?in|sign ?in|use|access|connect|get in|clock in|load|open)\b",  # noqa: E501
        # de
        r"\bserver (?:sind |ist |waren )?(?:\w+ ){0,3}(?:down|ausgefallen|nicht erreichbar|offline)\b",  # noqa: E501
        r"\b(?:störung|serverausfall|totalausfall)\b",
        r"\bniemand kann\b",
        # es
        r"\bservidor(?:es)? (?:están |está )?(?:caídos?|fuera de servicio|sin servicio)\b",
        r"\bnadie puede\b",
        # fr
        r"\bserveurs? (?:sont |est )?(?:en panne|hors service|down|indisponibles?)\b",
        r"\bpanne générale\b",
        r"\bpersonne ne peut\b",
        # pt
        r"\bservidor(?:es)? (?:estão |está )?(?:fora do ar|caídos?)\b",
        r"\b(?:app|aplicativo|sistema|site) (?:está |ficou )?fora do ar\b",
        r"\bninguém consegue\b",
        # it
        r"\bserver (?:sono |è )?(?:down|giù|irraggiungibil\w|fuori servizio)\b",
        r"\bnessuno riesce\b",
        # ja
        r"サーバー(?:が|は)?(?:ダウン|落ち|停止|繋がら|つながら)",
        r"(?:システム|通信)?障害",
        r"誰も(?:ログイン|使え|接続|利用)",
    ),
    "crash": (
        # en
        r"\bcrash\w*",
        r"\bfreez\w*",
        r"\bfroze\b",
        r"\bforce[- ]?clos\w*",
        r"\b(?:won'?t|doesn'?t|does not|will not|can'?t|cannot) (?:even )?(?:open|start|launch|load)\b",  # noqa: E501
        r"\b(?:keeps|kept) (?:closing|shutting down|quitting|restarting)\b",
        r"\bcloses (?:itself|by itself|immediately|on (?:its|it's) own)\b",
        r"\b(?:shuts|shut) (?:itself |myself )?down\b",
        r"\bquits (?:itself|by itself|immediately|unexpectedly|on (?:its|it's) own|whenever|when|every)\b",  # noqa: E501
        r"\b(?:won'?t|can'?t|cannot|doesn'?t) (?:even )?get past (?:the )?(?:logo|splash|loading|start)",  # noqa: E501
        r"\b(?:white|black|blank) screen\b",
        r"\bstuck on (?:the )?(?:loading|splash)\b",
        r"\bhangs (?:on|at|when|every)\b",
        r"\bnot responding\b",
        r"\b(?:completely|totally|basically|now) (?:unusable|broken)\b",
        r"\b(?:doesn'?t|does not|isn'?t|is not|not) work(?:ing)? at all\b",
        r"\bstopped working (?:completely|altogether|entirely)\b",
        # de
        r"\bstürzt\b",
        r"\babsturz\w*",
        r"\babgestürzt\b",
        r"\bfriert\b",
        r"\bhängt sich\b(?:\s+\w+){0,4}\s+auf\b",
        r"\b(?:öffnet|startet|lädt) (?:sich )?(?:nicht|gar nicht|überhaupt nicht)\b",
        r"\b(?:schließt|beendet) (?:sie |die app )?sich\b",  # "schließt sich sofort wieder"
        r"\bfunktioniert (?:gar|überhaupt) nicht\b",
        r"\b(?:komplett|völlig|total) unbrauchbar\b",
        # es
        r"\bse (?:cierra|bloquea|cuelga|congela|traba)\w*",
        r"\bse queda (?:congelad|colgad|pillad|trabad|en blanco|cargando)\w*",
        r"\bno (?:se )?(?:abre|inicia|carga)\b",
        r"\bcierra sola\b",
        r"\bno funciona (?:nada|para nada|en absoluto)\b",
        r"\b(?:totalmente|completamente) inservible\b",
        # fr
        r"\bplant(?:e|é|ée|ent)\b",
        r"\bse (?:ferme|bloque|fige)\b",
        r"\bfig(?:e|é|ée)\b",
        r"\bécran (?:\w+ ){0,2}(?:blanc|noir)\b",
        r"\bne (?:s'|se )?(?:ouvre|démarre|lance|charge|répond) (?:plus|pas)\b",
        r"\bne (?:marche|fonctionne) (?:plus du tout|pas du tout)\b",
        r"\b(?:complètement|totalement) inutilisable\b",
        # pt
        r"\btrav(?:a|am|ou|ar|ando|ad[oa]s?)\b",  # not French "travail"
        r"\bfecha sozinh[oa]\b",
        r"\b(?:app|aplicativo) (?:fecha|fechou)\b",
        r"\bnão (?:abre|inicia|carrega)\b",
        r"\bnão funciona (?:nada|de jeito nenhum|mais nada)\b",
        r"\b(?:totalmente|completamente) inutilizável\b",
        r"\bfechando sozinh[oa]\b",
        r"\btela (?:\w+ ){0,2}(?:branca|preta)\b",
        # it
        r"\bsi (?:chiude|blocca|pianta)\w*",
        r"\b(?:resta|rimane|è) bloccat[ao]\b",
        r"\bcrasha\w*",
        r"\bschermo (?:\w+ ){0,2}(?:bianco|nero)\b|\bschermata (?:\w+ ){0,2}(?:bianca|nera)\b",
        r"\bnon (?:si )?(?:apre|avvia|parte|carica)\b",
        r"\bnon funziona (?:più )?(?:per niente|affatto)\b",
        r"\b(?:completamente|totalmente) inutilizzabile\b",
        # ja (no word boundaries)
        r"落ち(?!ない|ません|なく)",
        r"クラッシュ",
        r"強制終了",
        r"フリーズ",
        r"固ま(?:る|っ|り)",
        r"動かなく",
        r"(?:全く|まったく|全然)(?:使え|動か|起動し)(?:ない|ません)",
        r"画面が真っ(?:白|黒)",
        r"(?:起動|開|ひら)(?:か|き|け)?(?:しない|ない|ません|できない)",
    ),
    "payment": (
        r"\bovercharg\w*",
        r"\b(?:payment|purchase|checkout|transaction)s? (?:failed|fails|failing|declined|(?:keeps|kept) (?:getting |being )?(?:declined|failing))\b",  # noqa: E501
        r"\b(?:failed|declined) (?:payment|purchase|transaction)\b",
        r"\b(?:payment|card|transaction|purchase)s? (?:\w+ ){0,2}(?:won'?t|doesn'?t|does not|will not|never|can'?t) go(?:es)? through\b",  # noqa: E501
        r"\b(?:payment|checkout) errors?\b",
        r"\b(?:can'?t|cannot|unable to) (?:pay|check ?out|complete (?:the|my) (?:payment|purchase))\b",  # noqa: E501
        r"\b(?:no|still waiting for (?:a|my|the)|never (?:got|received) (?:a|my|the)) refund\b",
        r"\bwhy (?:was|am|did|have) i (?:get |got |been )?(?:charged|billed)\b",
        r"\brefus\w* (?:to |a |my )?refund",
        r"\b(?:purchase|subscription|charge|payment|order|sticker pack|\w+) in my (?:history|account"  # noqa: E501
        r"|statement) that i (?:never|didn'?t) (?:made|make|order\w*|buy|bought)\b",
        r"\b(?:can'?t|cannot|unable to) cancel (?:the |my )?subscription\b",
        r"\bcancel\w* (?:the |my )?subscri\w* is\b.{0,30}\bhidden\b",
        r"\b(?:charged|billed) (?:me )?after i (?:cancel\w*|unsubscribed)\b",
        # de
        r"\bzahlung\w* (?:ist |wurde )?(?:fehlgeschlagen|geht nicht|funktioniert nicht|abgelehnt)\b",  # noqa: E501
        r"\bzahlung\w* (?:\w+ ){0,2}(?:schlägt fehl|geht nicht durch|bricht ab)\b",
        r"\bwarum wurde (?:mir )?\w* ?(?:abgebucht|berechnet)\b",
        # es
        r"\b(?:el )?pago (?:falla|fall[óo]|no funciona|rechazado)\b",
        r"\bpago (?:\w+ ){0,2}(?:no (?:pasa|se procesa)|da error)\b",
        r"\bpor qué me cobr\w*",
        # fr
        r"\bpaiement (?:échoue|a échoué|refusé|ne (?:fonctionne|passe) (?:pas|jamais|plus))\b",
        r"\bpaiement (?:\w+ ){1,2}(?:ne passe|échoue|est refusé)\b",
        r"\bpourquoi (?:ai-je|j'ai) été (?:débité|prélevé|facturé)\w*",
        # pt
        r"\bpagamento (?:falhou|falha|não funciona|recusado|(?:sempre )?dá erro)\b",
        r"\bpagamento (?:\w+ ){1,2}(?:dá erro|não passa|falh\w+|é recusado)\b",
        r"\bpor que fui cobrad[oa]\b",
        # it
        r"\bpagamento (?:fallito|non funziona|rifiutato|non va)\b",
        r"\bpagamento (?:\w+ ){1,3}(?:non va (?:mai )?a buon fine|non passa|fallisce|viene rifiutato)\b",  # noqa: E501
        r"\bperché mi (?:è stato|hanno) addebitat\w*",
        # ja
        r"(?:決済|支払い|課金)(?:が|に)?(?:失敗|できない|できません)",
        r"(?:支払|払)おうとするとエラー",
    ),
    "lockout": (
        r"\b(?:can'?t|cannot|can not|unable to|could ?n'?t|won'?t let me) (?:log ?in|login|sign ?in|access my account|get into my account)\b",  # noqa: E501
        r"\blocked out\b",
        r"\baccount (?:is |was |got |has been )?(?:locked|suspended|blocked|disabled)\b",
        r"\b(?:login|log in|sign in|sign-in) (?:fails|failed|doesn'?t work|does not work|broken|error)\b",  # noqa: E501
        r"\bpassword reset (?:doesn'?t|does not|never) \w+",
        r"\b(?:verification|login|two[- ]factor|2fa|sms) codes? (?:never|doesn'?t|does not|don'?t) (?:arrives?|comes?|shows? up|work)\b",  # noqa: E501
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


# Each pattern is searched on its own, and only in text that holds one of its literals: every
# match of a pattern contains one of the strings `_literals` finds in it, and one Aho-Corasick
# pass (native code) finds which of them a review holds. Most reviews hold the literals of no
# pattern or a few, where one alternation of all 200 made `re` try each of them at every word
# start. The patterns' order is their precedence: where two match at the same place, the
# first one's match is kept (the word-bounded ones first, then the Japanese ones, with no word
# boundaries; each group in the order of `_PATTERNS`).
_ORDER: tuple[tuple[str, str], ...] = tuple(
    (kind, p)
    for bounded in (True, False)
    for kind, pats in _PATTERNS.items()
    for p in pats
    if p.startswith(r"\b") is bounded
)


@functools.cache
def _regex(i: int) -> re.Pattern[str]:
    """Pattern `i` of `_ORDER`, compiled at its first search (most are rare: compiling all 200
    at import was a tenth of the server's start)."""
    return re.compile(_ORDER[i][1])


try:  # CPython's own parser of patterns
    _SRE: Any = importlib.import_module("re._constants")
    _SRE_PARSER: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - another Python's re: every pattern always searched
    _SRE = _SRE_PARSER = None


def _literals(pattern: str) -> frozenset[str]:
    """Strings one of which every match of `pattern` contains (empty: no such set found, so
    the pattern is always searched). From the parsed pattern: a run of literal characters, or
    one string from each branch of an alternation; the set whose shortest string is longest."""
    if _SRE is None or _SRE_PARSER is None:  # pragma: no cover - another Python's re
        return frozenset()
    sre = _SRE
    try:
        parsed = _SRE_PARSER.parse(pattern)
    except (AttributeError, re.error):  # pragma: no cover - another Python's re
        return frozenset()
    if parsed.state.flags & re.IGNORECASE:
        return frozenset()
    repeats = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)

    def required(items: Any) -> frozenset[str]:
        found: list[frozenset[str]] = []
        run: list[str] = []
        for op, av in [*items, (None, None)]:
            if op is sre.LITERAL:
                run.append(chr(av))
                continue
            if run:
                found.append(frozenset({"".join(run)}))
                run = []
            if op is sre.SUBPATTERN and not av[1] & re.IGNORECASE:
                found.append(required(av[3]))
            elif op is sre.BRANCH:
                branches = [required(b) for b in av[1]]
                if all(branches):
                    found.append(frozenset().union(*branches))
            elif op in repeats and av[0] >= 1:
                found.append(required(av[2]))
        found = [f for f in found if f]
        return max(found, key=lambda f: (min(map(len, f)), -len(f))) if found else frozenset()

    return required(parsed)


def _prefilter() -> tuple[ahocorasick_rs.AhoCorasick, tuple[tuple[int, ...], ...], tuple[int, ...]]:
    """(automaton of every literal, the patterns (indices into `_ORDER`) each literal gates,
    the patterns with no literal, always searched)."""
    gated: dict[str, list[int]] = {}
    always: list[int] = []
    for i, (_, pattern) in enumerate(_ORDER):
        literals = _literals(pattern)
        if not literals:
            always.append(i)
        for literal in literals:
            gated.setdefault(literal, []).append(i)
    automaton = ahocorasick_rs.AhoCorasick(list(gated))
    return automaton, tuple(tuple(v) for v in gated.values()), tuple(always)


_AUTOMATON, _GATED, _ALWAYS = _prefilter()
JAPANESE_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")
"""Kana, CJK ideographs and half-width katakana: text with none of them is not Japanese."""

_NEGATION_RE = re.compile(_NEGATION + r"(?:\W+\w+){0,2}\W*$")
_NEGATED_AFTER_RE = re.compile(r"\s*(?:nie|nicht|nimmer|never)\b")

_URGENCY_ORDER = ("Low", "Medium", "High", "Critical")


MOST_PATTERNS_ALONE = 24
"""A text that holds the literals of more patterns than this (a long one, or one made of
them) is searched with one alternation of every pattern: each pattern alone scans the whole
text, and 200 scans of 8,000 characters cost four times one alternation's."""


def signal_spans(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of each signal in `text` that is not negated, in reading order.
    Matches may overlap ("why was I charged twice": a payment question holding a double
    charge), so each search resumes just after each match's start, not at its end. At most
    one match starts at a position: the first pattern's in `_ORDER`."""
    low = text.lower()
    try:
        hits = _AUTOMATON.find_matches_as_indexes(low, overlapping=True)
    except UnicodeEncodeError:  # a lone surrogate (\ud800 in JSON): no UTF-8 to search
        hits = None
    if hits is None:
        found = _alternation_matches(low)
    else:
        active = set(_ALWAYS)
        for literal, _, _ in hits:
            active.update(_GATED[literal])
        if not active:
            return []
        found = (
            _alternation_matches(low)
            if len(active) > MOST_PATTERNS_ALONE
            else _pattern_matches(low, sorted(active))
        )
    out: list[tuple[str, int, int]] = []
    for start in sorted(found):
        kind, match = found[start]
        end = match.end()
        if _NEGATION_RE.search(low, max(0, start - 30), start) or _NEGATED_AFTER_RE.match(
            low, end, end + 12
        ):
            continue
        out.append((kind, start, end))
    return out


def _pattern_matches(low: str, patterns: list[int]) -> dict[int, tuple[str, re.Match[str]]]:
    """start -> (kind, match) of `patterns` (indices into `_ORDER`, in order), each searched
    alone; the first pattern's match where two start at the same place."""
    found: dict[int, tuple[str, re.Match[str]]] = {}
    for i in patterns:
        kind = _ORDER[i][0]
        for match in _starts(_regex(i), low):
            found.setdefault(match.start(), (kind, match))
    return found


def _alternation_matches(low: str) -> dict[int, tuple[str, re.Match[str]]]:
    """As `_pattern_matches` of every pattern, with two alternations (`_alternations`; the
    second, Japanese, only in text with Japanese script): at a position, an alternation's
    first branch that matches is the first pattern's match."""
    found: dict[int, tuple[str, re.Match[str]]] = {}
    japanese = not low.isascii() and JAPANESE_SCRIPT.search(low) is not None
    bounded, unbounded = _alternations()
    for alternation in (bounded, unbounded) if japanese else (bounded,):
        for match in _starts(alternation, low):
            found.setdefault(match.start(), (str(match.lastgroup).removesuffix("_x"), match))
    return found


def _starts(pattern: re.Pattern[str], low: str) -> list[re.Match[str]]:
    """The match of `pattern` at every position where it matches, in reading order (each
    search resumes just after the last match's start: matches may overlap)."""
    out: list[re.Match[str]] = []
    pos = 0
    while (match := pattern.search(low, pos)) is not None:
        out.append(match)
        pos = match.start() + 1
    return out


@functools.cache  # built at the first text that needs it: few ever do
def _alternations() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The word-bounded patterns under one leading \\b, and the others (the Japanese ones), each
    kind a named group, in the order of `_ORDER`."""
    bounded: list[str] = []
    other: list[str] = []
    for kind, pats in _PATTERNS.items():
        starts = [p.removeprefix(r"\b") for p in pats if p.startswith(r"\b")]
        rest = [p for p in pats if not p.startswith(r"\b")]
        bounded.append(f"(?P<{kind}>" + "|".join(f"(?:{p})" for p in starts) + ")")
        if rest:
            other.append(f"(?P<{kind}_x>" + "|".join(f"(?:{p})" for p in rest) + ")")
    return re.compile(r"\b(?:" + "|".join(bounded) + ")"), re.compile("|".join(other))


def severity_signals(text: str) -> frozenset[str]:
    """The signal kinds present in `text` (not negated)."""
    return frozenset(kind for kind, _, _ in signal_spans(text))


def urgency_floor(signals: frozenset[str]) -> str | None:
    """The least urgency the signals allow (None when there is none)."""
    floors = [FLOORS[kind] for kind in signals]
    return max(floors, key=_URGENCY_ORDER.index) if floors else None


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
    if signals & _BUG_KINDS and category in ("Praise", "Other") and "Bug Report" in categories:
        category = "Bug Report"
    return category, urgency

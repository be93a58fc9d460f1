"""Extractive topic and summary, shared by every local model format's runtime.

**Topic**: a 1-4 word noun phrase naming the feature or problem. Candidates are runs of content
words between punctuation and stop words (function words, pronouns, auxiliaries, question
words, the modal and wish verbs of a request, sentiment and filler words, in English, German,
Spanish, French, Portuguese and Italian; katakana/kanji runs in Japanese), trimmed of verb
forms at their edges, with French and Italian elisions dropped ("l'onglet" is "onglet"); in
German, which writes every noun capitalised, only the capitalised words inside a clause (unless
the review is written all in lower case); the best run by idf (from the model's training texts)
wins, at most 3 words. A severity signal (`gateway.local.signals`: outage, crash, data loss,
security, lost money, payment, lock-out) names the problem: "Checkout Crash", "Payment
Problem"; in a review not in English it is the whole topic ("Data Loss", not "Gespeicherten
Rezepte Loss"); a review with no content word gets the category's fallback topic.

**Summary**: one third-person sentence of at most 25 words: the most informative sentence of
the review (the one with a severity signal, else the first question, else the one with the
most content words), stripped of lead-ins ("ugh", "hey devs,") and closers ("please fix"),
pronouns moved to the third person, and framed by the category: "The user reports that ...",
"The user asks whether/how ...?", "The user requests ...", "The user says that ...". A
question stays a question: when the summarised sentence is not the review's question, the
question is joined to it ("The user reports that ... and asks whether ...?"). Reviews not in
English are framed as "The user writes in German: ..." ("The user asks in German: ...?" with
the question quoted too).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from gateway.local.signals import JAPANESE_SCRIPT, apply_signals, signal_spans
from gateway.request.triage import SUMMARY_MAX_CHARS, TOPIC_MAX_CHARS, Triage

__all__ = [
    "DEFAULT_TOPICS",
    "LANGUAGES",
    "STOP_WORDS",
    "SUMMARY_MAX_WORDS",
    "default_topic",
    "detect_language",
    "extract_summary",
    "extract_topic",
    "model_triage",
]

SUMMARY_MAX_WORDS = 25
TOPIC_MAX_WORDS = 3  # content words; a problem word ("Crash") may make it 4
_TOKEN_MAX_CHARS = 20
_NO_WORDS_SUMMARY = "The review has no words, only symbols or emoji."

DEFAULT_TOPICS: dict[str, str] = {
    "Bug Report": "Unspecified Bug",
    "Feature Request": "Feature Suggestion",
    "Complaint": "General Dissatisfaction",
    "Praise": "Overall Experience",
    "Question": "General Question",
    "Other": "General Feedback",
}

SIGNAL_TOPICS: dict[str, tuple[str, str]] = {  # kind -> (topic alone, suffix after a phrase)
    "outage": ("Service Outage", "Outage"),
    "crash": ("App Crash", "Crash"),
    "data_loss": ("Data Loss", "Loss"),
    "security": ("Account Security", "Security"),
    "money_lost": ("Lost Payment", "Payment"),
    "payment": ("Payment Problem", "Payment"),
    "lockout": ("Login Problem", "Login"),
}
_SIGNAL_ORDER = tuple(SIGNAL_TOPICS)

_EN = """
a about above after again against all almost along already also although always am among an
and another any anybody anyone anything anyway anywhere are aren't around as at be became
because become been before being below between both but by can can't cannot could couldn't
did didn't do does doesn't doing don't done down during each either else enough etc even ever
every everyone everything few for from further get gets getting got gotten had hadn't has
hasn't have haven't having he her here hers herself him himself his how however i i'd i'll
i'm i've if in into is isn't it it's its itself just least less let's like made make makes
many may me might mine more most much must my myself neither never no nobody none nor not
nothing now of off often on once one only onto or other others otherwise our ours ourselves
out over own per perhaps quite rather really same she should shouldn't since so some
somebody someone something sometimes somewhat still such than that that's the their theirs
them themselves then there there's these they they're thing things this those though through
thru to too toward under until up upon us very via was wasn't we we're we've well were
weren't what what's whatever when whenever where whether which while who whoever whole whom
whose why will with within without won't would wouldn't yet you you'd you'll you're you've
your yours yourself yourselves
app apps application please pls plz thanks thank thx ty would could also every time times
use used uses using want wants wanted need needs needed way lot lots bit thing something
day days today yesterday week weeks month months year years hour hours minute minutes
second seconds moment update updated updates updating version phone ok okay yes yeah yep
lol hey hi hello guys devs dev developer developers team star stars im ive id ill its dont
cant doesnt wont isnt didnt u ur gonna wanna pretty super love loved loving loves hate hated
hates great best worst good better bad awesome amazing terrible horrible awful nice cool
perfect perfectly excellent fantastic wonderful useless annoying fine favorite favourite
recommend recommended stupid garbage trash ridiculous disappointed disappointing frustrating
frustrated happy sad wow omg ugh seriously honestly literally definitely totally absolutely
basically actually anyway kinda sorta maybe tried trying try tries keeps keep kept says said
say saying tell told know knew think thought feel felt look looks looking looked work works
worked working issue issues problem problems fix fixed fixing fixes add added adding adds
goes going went gone anymore ago able lately recently stuff guess sure come comes came
coming bring brought give gave given takes take took taken find found see seen saw show
shows shown start started starts open opens opened opening close closes closed closing
again back every single whole new old first last next lot many much more most less little
big small long short high low right wrong real free easy hard simple quick fast slow
literally constantly keeps anything everytime asap twice once ever instead
two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty sixty
seventy eighty ninety hundred thousand million zero none
behind inside outside away beside besides across beyond near towards throughout amongst
underneath beneath whilst despite except unlike
"""
_DE = """
aber alle allem allen aller alles als also am an ans auch auf aus bei beim bin bis bitte
bist da dabei damit dann das dass dem den denn der des die dies diese diesem diesen dieser
dieses doch dort du durch ein eine einem einen einer eines er es etwas euch euer für gar
gibt hab habe haben hat hatte hier ich ihm ihn ihr im immer in ins ist ja jetzt kann kein
keine man mehr mein meine meinem meinen meiner mich mir mit muss nach nicht nichts noch nur
ob oder ohne schon sehr sein seine seit sich sie sind so soll ständig total über um und uns
unser von vor war waren warum was weil wenn wer wie wieder will wir wird wo zu zum zur
danke super toll gut schlecht leider einfach immer ab echt mal gerade app apps update
funktioniert geht gehen wurde werden würde könnte bitte stürzt
"""
_ES = """
a al algo algunos ante antes aquí así aun aunque cada como con contra cual cuando de del
desde donde dos el ella ellos en entre era es esa ese eso esta estaba está están este esto
fue ha hace hay la las le les lo los más me mi mis mucho muy nada ni no nos o otra otro para
pero poco por porque que qué se ser si sí sin sobre solo son su sus también tan te tengo
tiene todo todos tu un una uno unos y ya yo gracias favor por favor bien mal excelente genial
app aplicación actualización siempre cada vez puedo puede funciona
"""
_FR = """
à a ai au aucun aussi autre avec avoir bien c ça car ce cela ces cet cette chaque comme dans
de des donc du elle elles en encore est et été être fait il ils j je juste l la le les leur
lui m ma mais me même mes mon n ne ni nos notre nous on ou où par pas peu plus pour pourquoi
quand que quel quelle qui s sa sans se ses si son sont sur ta te tes toujours tous tout très
tu un une vos votre vous y merci super génial nul appli application mise jour depuis fois
peux peut marche fonctionne
"""
_PT = """
a ao aos as até com como da das de dela dele do dos e é ela ele eles em entre era essa esse
esta está estão este eu foi há isso isto já la lhe mais mas me meu meus minha minhas muito
na não nas nem no nos o os ou para pela pelo por porque quando que se sem ser seu sua são só
também tem tenho todo todos um uma você vocês obrigado obrigada ótimo bom ruim app aplicativo
atualização sempre vez consigo funciona
"""
_IT = """
a ad al alla alle anche ancora che chi ci come con da dal dalla dei del della delle di dopo
e è ed gli ha hanno ho i il in io la le lo ma mi mia mio molto ne nei nel nella no non o
per perché più poi quando quello questa questo se senza si sono su sua suo sul sulla tra
tutti tutto un una uno grazie ottimo bello brutto app applicazione aggiornamento sempre volta
riesco funziona
"""
# Question words, and the modal and wish verbs a request or a question is phrased with ("I
# would like to be able to share ...", "could you add ..."): the feature is what follows them.
_ASK = """
wann wieso weshalb welche welcher welches könnte könntet könnten können kannst würde würden
wäre wären möchte möchten hätte hätten gerne gern wünsche machen einbauen hinzufügen
cómo dónde cuándo cuál cuáles quién podría podrían podrías poder pueden puedes debería
deberían sería gustaría quiero quisiera añadir agregar agreguen añadan hay
quand quoi quel quelle quels quelles lequel laquelle pourrait pourriez pourrais
pouvez pouvoir voudrais voudrait aimerais aimerait serait souhaite ajouter ajoutez
est-ce y-a-t-il a-t-il
onde cadê qual quais quem poderia poderiam podiam poder pode posso deveria deveriam seria
gostaria queria quero adicionar adicionem coloquem faço dá
dove quale quali chi cosa potreste potrebbe potete potrei poter posso vorrei vorremmo
sarebbe servirebbe dovrebbe aggiungere aggiungete mettere
"""
STOP_WORDS: frozenset[str] = frozenset(
    w for block in (_EN, _DE, _ES, _FR, _PT, _IT, _ASK) for w in block.split()
)

# A word that is the problem itself: named by the signal suffix, never part of the phrase.
_PROBLEM_RE = re.compile(
    r"^(?:crash\w*|freez\w*|froze|bug|bugs|buggy|glitch\w*|lag\w*|error\w*|broken|stuck|"
    r"absturz\w*|abgestürzt|plant\w*|trava\w*|cierra|blocca|hack\w*|charged|lost|deleted)$"
)
_GERUND_NOUNS = frozenset(
    [
        "booking",
        "billing",
        "shipping",
        "streaming",
        "messaging",
        "syncing",
        "pricing",
        "setting",
        "settings",
        "recording",
        "recordings",
        "listing",
        "listings",
        "tracking",
        "banking",
        "parking",
        "onboarding",
        "rating",
        "ratings",
        "meeting",
        "meetings",
        "scrolling",
        "printing",
        "editing",
        "sharing",
        "scanning",
        "sorting",
        "filtering",
        "searching",
        "budgeting",
        "planning",
        "training",
        "cooking",
        "running",
        "login",
        "logging",
        "loading",
        "ordering",
        "checking",
        "dating",
        "painting",
        "reading",
        "writing",
        "drawing",
        "spelling",
        "morning",
        "evening",
        "wedding",
        "building",
        "heading",
    ]
)
_LANG_HINTS: dict[str, frozenset[str]] = {
    "German": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "ich",
            "mit",
            "nach",
            "dem",
            "den",
            "ein",
            "eine",
            "auf",
            "bitte",
            "wenn",
            "auch",
            "sich",
            "ohne",
            "kann",
            "wird",
            "beim",
            "zum",
            "sie",
        ]
    ),
    "Spanish": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "que",
            "y",
            "es",
            "no",
            "con",
            "por",
            "para",
            "una",
            "muy",
            "pero",
            "cuando",
            "mi",
            "hay",
            "también",
        ]
    ),
    "French": frozenset(
        [
            "le",
            "la",
            "les",
            "et",
            "est",
            "pas",
            "je",
            "avec",
            "pour",
            "une",
            "dans",
            "très",
            "mais",
            "quand",
            "mon",
            "ne",
            "au",
            "sur",
            "ça",
        ]
    ),
    "Portuguese": frozenset(
        [
            "o",
            "os",
            "que",
            "e",
            "é",
            "não",
            "com",
            "para",
            "uma",
            "muito",
            "mas",
            "quando",
            "meu",
            "minha",
            "você",
            "ao",
            "isso",
            "esse",
            "essa",
        ]
    ),
    "Italian": frozenset(
        [
            "il",
            "lo",
            "gli",
            "che",
            "è",
            "non",
            "con",
            "per",
            "una",
            "molto",
            "ma",
            "quando",
            "mio",
            "mia",
            "sono",
            "di",
            "della",
            "nel",
            "più",
            "anche",
            "questo",
            "questa",
        ]
    ),
}

_WORD_RE = re.compile(r"[^\W\d_](?:[\w'’-]*\w)?")
_CJK_CONTENT_RE = re.compile(r"[\u30a0-\u30ff\u3400-\u9fff\uff66-\uff9fー]{2,}")
_CHUNK_SPLIT_RE = re.compile(r"[.,;:!?…()\[\]\"“”«»/|+&–—\n]+|\s-\s")
# A newline run is matched from its first whitespace only ((?<!\s)): the plain `\s*[\r\n]+\s*`
# retries from every space of a long run of spaces, quadratic in its length.
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?…。！？])\s*|(?<!\s)\s*[\r\n]\s*")
_HAS_WORD_RE = re.compile(r"\w")


def default_topic(category: str) -> str:
    """The topic of a review in `category` that has no content words."""
    return DEFAULT_TOPICS.get(category, category)


def detect_language(text: str) -> str:
    """ "English", "Japanese", or one of German/Spanish/French/Portuguese/Italian by function
    words; English when nothing else scores."""
    if JAPANESE_SCRIPT.search(text):
        return "Japanese"
    counts = [0] * len(_HINT_LANGS)
    hinted = _HINTED.get
    for word in _WORD_RE.findall(text):
        for i in hinted(word.lower(), ()):
            counts[i] += 1
    best = 0  # English first: it wins ties, and a text with no hint
    for i in range(1, len(counts)):
        if counts[i] > counts[best]:
            best = i
    return _HINT_LANGS[best]


_EN_HINTS = frozenset(
    [
        "the",
        "and",
        "is",
        "it",
        "to",
        "i",
        "my",
        "this",
        "not",
        "with",
        "for",
        "on",
        "when",
        "of",
        "a",
        "can",
        "you",
    ]
)
_HINT_LANGS = ("English", *_LANG_HINTS)
LANGUAGES: tuple[str, ...] = (*_HINT_LANGS, "Japanese")
"""Every language `detect_language` names."""


def _hint_table() -> dict[str, tuple[int, ...]]:
    """word -> the languages (indices into `_HINT_LANGS`) it hints at: one lookup a word."""
    table: dict[str, tuple[int, ...]] = {}
    for i, hints in enumerate([_EN_HINTS, *_LANG_HINTS.values()]):
        for word in hints:
            table[word] = (*table.get(word, ()), i)
    return table


_HINTED = _hint_table()


# --- topic -----------------------------------------------------------------------------------


# French and Italian elide an article, pronoun or preposition into the next word ("l'onglet",
# "j'adore", "c'est", "dell'app"): the word is what follows the apostrophe (two letters at
# least: "quest's" and "Dell's" are English possessives).
_ELISION_RE = re.compile(
    r"^(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|un|dell|dall|nell|sull|all|quell|quest|com)['’](?=\w\w)",
    re.IGNORECASE,
)


def _norm(word: str) -> str:
    return _ELISION_RE.sub("", word.lower().replace("’", "'")).strip("'-")


def _is_content(word: str) -> bool:
    if len(word) < 2 or len(word) > _TOKEN_MAX_CHARS or word in STOP_WORDS:
        return False
    head, apostrophe, tail = word.partition("'")
    if apostrophe and (head in STOP_WORDS or tail == "t"):  # we'll, they'd, shan't
        return False
    if _PROBLEM_RE.match(word):
        return False
    if word.endswith("ly") and len(word) > 4:
        return False
    if word.endswith("ing") and word not in _GERUND_NOUNS:
        return False
    return not (word.endswith("ed") and len(word) > 4 and not word.endswith("eed"))


# A review's words repeat across reviews (Zipf), and normalising and testing one costs more
# than a dict lookup: the verdicts are kept, bounded in entries and word length, and emptied
# when full (a dict is safe to share between threads under the GIL).
_TOKENS: dict[str, tuple[str, bool, str]] = {}
_TOKENS_MAX = 16_384
_TOKEN_CACHED_CHARS = 32


def _token(raw: str) -> tuple[str, bool, str]:
    """(normalised, is a content word, as shown in a topic) of a word as written."""
    hit = _TOKENS.get(raw)
    if hit is None:
        word = _norm(raw)
        hit = (word, _is_content(word), _ELISION_RE.sub("", raw).strip("'’-"))
        if len(raw) <= _TOKEN_CACHED_CHARS:
            if len(_TOKENS) >= _TOKENS_MAX:
                _TOKENS.clear()
            _TOKENS[raw] = hit
    return hit


def _runs(text: str, capitalised_nouns: bool = False) -> list[list[tuple[str, str, int]]]:
    """Runs of consecutive content words: [(normalised, as written, position)]. With
    `capitalised_nouns` (German, where every noun is written capitalised), only the
    capitalised words that do not start a sentence or clause are content words."""
    runs: list[list[tuple[str, str, int]]] = []
    pos = 0
    for chunk in _CHUNK_SPLIT_RE.split(text):
        run: list[tuple[str, str, int]] = []
        first = True
        for raw in _WORD_RE.findall(chunk):
            if not raw.isascii() and JAPANESE_SCRIPT.search(raw):
                if run:
                    runs.append(run)
                    run = []
                runs += [[(c, c, pos + i)] for i, c in enumerate(_CJK_CONTENT_RE.findall(raw))]
                pos += 10
                continue
            word, content, shown = _token(raw)
            pos += 1
            if capitalised_nouns and (first or not shown[:1].isupper()):
                content = False
            first = False
            if content:
                run.append((word, shown, pos))
            elif run:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
    return runs


def _title(word: str) -> str:
    if word.isupper() and len(word) <= 5:
        return word  # GPS, UI, PDF
    if len(word) > 1 and word[0].islower() and word[1].isupper():
        return word  # iPad
    if "-" in word:  # each part of a hyphenated word: Wi-Fi, E-Mail, PDF-Export
        return "-".join(_title(part) for part in word.split("-"))
    return word[:1].upper() + word[1:].lower()


def extract_topic(
    text: str,
    idf: Mapping[str, float],
    default_idf: float,
    fallback: str,
    *,
    signals: Iterable[str] = (),
    language: str = "English",
) -> str:
    """The review's topic (see the module docstring); `fallback` when it has no content word
    and no signal. `language` is the review's (`detect_language`). A review not in English
    with a signal gets the signal's own topic: its words would make a phrase of two
    languages. A German review's topic is made of nouns, the capitalised words inside a
    clause, when it has any (a review written all in lower case has none)."""
    runs = _runs(text, capitalised_nouns=True) if language == "German" else []
    if not runs:
        runs = _runs(text)
    counts: Counter[str] = Counter(w for run in runs for w, _, _ in run)
    weight = {w: (1.0 + math.log(n)) * idf.get(w, default_idf) for w, n in counts.items()}

    # The best window of 1..TOPIC_MAX_WORDS distinct words in a run: the sum of their weights
    # over size**0.45 (longer phrases must earn their words), less a millionth per position
    # (earlier phrases win ties); the first window found wins an exact tie.
    best: list[tuple[str, str, int]] = []
    best_score = 0.0
    for run in runs:
        words = [w for w, _, _ in run]
        weights = [weight[w] for w in words]
        n = len(run)
        for size in range(1, min(TOPIC_MAX_WORDS, n) + 1):
            scale = size**0.45
            for i in range(n - size + 1):
                total = weights[i]
                for k in range(i + 1, i + size):
                    total += weights[k]
                score = total / scale - run[i][2] * 1e-6
                if score > best_score and (size == 1 or len(set(words[i : i + size])) == size):
                    best, best_score = run[i : i + size], score
    phrase = " ".join(_title(raw) for _, raw, _ in best)
    kinds = [k for k in _SIGNAL_ORDER if k in set(signals)]
    if kinds:
        alone, suffix = SIGNAL_TOPICS[kinds[0]]
        if not phrase or language != "English":
            return alone
        if suffix.lower() not in phrase.lower().split():
            phrase = f"{phrase} {suffix}"
    return _clip_topic(phrase or fallback)


def _clip_topic(topic: str) -> str:
    words = topic.split()[:4]
    while len(words) > 1 and len(" ".join(words)) > TOPIC_MAX_CHARS:
        words.pop(0 if len(words) > 2 else -1)
    out = " ".join(words)[:TOPIC_MAX_CHARS].strip()
    return out or "General Feedback"


# --- summary ---------------------------------------------------------------------------------

_LEAD_IN_RE = re.compile(
    r"^(?:(?:ugh+|ok(?:ay)?(?: so)?|so(?: basically)?|well|hey(?: devs| guys| team| there)?|hi"
    r"|hello|honestly|heads up|update|edit|help|please|pls|plz|wow|omg|lol|sigh|hmm+|dear \w+"
    r"|yo|um+|uh+|basically|seriously|listen)\b[\s,:!.-]*)+",
    re.IGNORECASE,
)
_CLOSER_RE = re.compile(
    r"[\s,;-]*(?:please fix(?: (?:it|this|asap|soon))?|pls fix(?: asap)?|fix (?:it|this)(?: asap)?"
    r"|asap|thanks?(?: you)?(?: in advance)?|thx|help|1 star until (?:it'?s|its) fixed"
    r"|\d stars?)[\s!.]*$",
    re.IGNORECASE,
)
_PRONOUNS: dict[str, str] = {
    "i": "they",
    "me": "them",
    "my": "their",
    "mine": "theirs",
    "myself": "themselves",
    "we": "they",
    "us": "them",
    "our": "their",
    "ours": "theirs",
    "i'm": "they're",
    "im": "they're",
    "i've": "they've",
    "ive": "they've",
    "i'd": "they'd",
    "i'll": "they'll",
    "we're": "they're",
    "we've": "they've",
}
_AGREE = {"they was": "they were", "they am": "they are", "they has": "they have"}
_PRONOUN_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k in _PRONOUNS) + r")\b", re.I)
_AGREE_RE = re.compile(r"\b(they) (was|am|has)\b", re.IGNORECASE)
_SUBJECTS = frozenset(
    [
        "i",
        "we",
        "my",
        "our",
        "the",
        "it",
        "its",
        "it's",
        "this",
        "that",
        "these",
        "those",
        "there",
        "they",
        "their",
        "a",
        "an",
        "app",
        "every",
        "all",
        "since",
        "after",
        "when",
        "once",
        "everything",
        "nothing",
    ]
)
_WH = ("how", "where", "what", "when", "why", "which", "who")
_AUX = (
    "can",
    "could",
    "will",
    "would",
    "should",
    "do",
    "does",
    "did",
    "is",
    "are",
    "was",
    "were",
    "may",
    "might",
    "have",
    "has",
)
_REQUEST_RE = re.compile(
    r"^(?:(?:can|could|would|will) you (?:please )?|please |pls |plz |i (?:would|'d) (?:really )?"
    r"love |i wish (?:you would|there was|there were|it had|i could|you'd) |we need |i need )?"
    r"(?:add|bring back|include|implement|support|make|give us|allow|let us)\b\s*(.+)$",
    re.IGNORECASE,
)
_WISH_RE = re.compile(
    r"^(?:it would be (?:nice|great|cool|awesome|helpful) (?:to have|if (?:you|we|i) could "
    r"(?:have|get))|would (?:love|like) (?:to (?:have|see|get))?|i wish (?:there was|there were|it "
    r"had)|please consider adding|one thing:? if you added)\s+(.+)$",
    re.IGNORECASE,
)


def _third_person(clause: str) -> str:
    out = _PRONOUN_RE.sub(lambda m: _PRONOUNS[m.group(1).lower()], clause)
    return _AGREE_RE.sub(lambda m: _AGREE[f"they {m.group(2).lower()}"], out)


_TRAILING = " \t\r\n.,;:!?…-–—"
_CJK_END = "。．！？!?"
_CLOSER_WINDOW = 160


def _clean(sentence: str) -> str:
    s = " ".join(sentence.split())
    s = _LEAD_IN_RE.sub("", s)
    # Closers sit at the end: match them in the last _CLOSER_WINDOW characters only, so an
    # unanchored `[\s,;-]*` prefix never rescans a long run (quadratic on 8,000 dashes).
    head, tail = s[:-_CLOSER_WINDOW], s[-_CLOSER_WINDOW:]
    previous = None
    while previous != tail:
        previous = tail
        tail = _CLOSER_RE.sub("", tail)
    s = head + tail
    s = s.rstrip(_TRAILING)  # not a `[...]+$` pattern: that is quadratic on long runs
    s = re.sub(r"\s*[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]+", "", s).strip()
    return s


def _lower_first(s: str) -> str:
    if not s:
        return s
    first = s.split()[0]
    if first.isupper() and len(first) > 1:
        return s  # an acronym or a shouted review
    return s[:1].lower() + s[1:]


def _limit(words: list[str], budget: int) -> list[str]:
    if len(words) <= budget:
        return words
    cut = words[:budget]
    # end at a clause boundary when one is near
    for i in range(len(cut) - 1, max(len(cut) // 2, 1), -1):
        if cut[i].endswith(",") or cut[i + 1 if i + 1 < len(cut) else i].lower() in (
            "and",
            "but",
            "because",
            "so",
            "which",
        ):
            return cut[: i + 1]
    return cut


# Words a cut clause must not end on.
_DANGLING = frozenset(
    ["and", "but", "because", "so", "which", "the", "a", "an", "to", "of", "or", "when"]
)


def _is_question(sentence: str) -> bool:
    return sentence.rstrip().endswith(("?", "？"))


def _finish(frame: str, clause: str, end: str) -> str:
    words = clause.split()
    budget = SUMMARY_MAX_WORDS - len(frame.split())
    words = _limit(words, budget)
    while words and words[-1].lower().strip(",;:") in _DANGLING:
        words.pop()
    body = " ".join(words).rstrip(",;:-– ")
    out = f"{frame} {body}{end}" if body else f"{frame.removesuffix(' that')}{end}"
    if len(out) > SUMMARY_MAX_CHARS:
        out = out[: SUMMARY_MAX_CHARS - 1].rstrip() + end
    return out


def _question(q: str) -> str:
    words = q.split()
    low = [w.lower() for w in words]
    if low and low[0] in _WH:
        wh = low[0]
        if len(low) >= 3 and low[1] in ("do", "can", "should", "could") and low[2] in ("i", "we"):
            verb = "to" if low[1] in ("do", "should") else "they can"
            return f"The user asks {wh} {verb} {_third_person(' '.join(words[3:]))}"
        if len(low) >= 2 and low[1] in ("is", "are", "does", "do", "was", "were", "did"):
            return f"The user asks {wh} {_third_person(' '.join(words[1:]))}"
        return f"The user asks {wh} {_third_person(' '.join(words[1:]))}"
    if len(low) >= 2 and low[0] in _AUX:
        aux, subject = low[0], low[1]
        if subject in ("i", "we"):
            return f"The user asks whether they {aux} {_third_person(' '.join(words[2:]))}"
        if subject == "you":
            return (
                f"The user asks whether the developers {aux} {_third_person(' '.join(words[2:]))}"
            )
        if subject in ("there", "it", "this", "that", "they"):
            return f"The user asks whether {subject} {aux} {_third_person(' '.join(words[2:]))}"
        if subject in ("the", "my", "your", "this", "a") and len(words) >= 3:
            return (
                f"The user asks whether {_third_person(' '.join(words[1:3]))} {aux} "
                f"{_third_person(' '.join(words[3:]))}"
            )
    return f"The user asks: {_lower_first(_third_person(q))}"


def _pick_sentence(text: str, sentences: list[str], signal_at: int | None) -> str:
    if signal_at is not None:
        cursor = 0
        for s in sentences:
            start = text.find(s, cursor)
            if start >= 0:
                cursor = start + len(s)
                if cursor > signal_at:
                    return s
    questions = [s for s in sentences if _is_question(s)]
    if questions:
        return questions[0]

    counts = [sum(_token(w)[1] for w in _WORD_RE.findall(s)) for s in sentences]
    best = max(range(len(sentences)), key=lambda i: (counts[i] >= 2, counts[i], -i))
    return sentences[best]


def _statement(clause: str, category: str | None) -> tuple[str, str]:
    """(frame, body) of a summary of a sentence that is not a question, by category."""
    request = _REQUEST_RE.match(clause) or _WISH_RE.match(clause)
    if request and category in (None, "Feature Request"):
        return "The user requests", _third_person(request.group(1))
    first = clause.split()[0].lower() if clause.split() else ""
    if first not in _SUBJECTS and not clause[:1].isupper():
        verb = {"Praise": "praises the app", "Complaint": "complains", "Bug Report": "reports"}
        return f"The user {verb.get(category or '', 'writes')}:", _third_person(clause)
    frame = {
        "Bug Report": "The user reports that",
        "Complaint": "The user complains that",
        "Feature Request": "The user suggests that",
        "Praise": "The user says that",
        "Question": "The user asks about",
    }.get(category or "", "The user says that")
    return frame, _lower_first(_third_person(clause))


def _and_asks(frame: str, body: str, question: str) -> str:
    """`frame` + `body` (the summarised sentence) joined with the review's question, so that a
    question in the review stays one in the summary: "The user reports that they lost all their
    notes after the update and asks how to get them back?". The question gets at least half
    the word budget."""
    if frame == "The user asks about":  # "asks about <clause> and asks ..." reads badly
        frame = "The user says that"
    asks = _question(question).removeprefix("The user ").split()
    budget = SUMMARY_MAX_WORDS - len(frame.split()) - 1  # "and"
    words = _limit(body.split(), max(budget - len(asks), budget // 2))
    while words and words[-1].lower().strip(",;:") in _DANGLING:
        words.pop()
    words = [*words[:-1], words[-1].rstrip(",;:-– ")] if words else words
    return _finish(frame, " ".join([*words, "and", *asks[: budget - len(words)]]), "?")


def extract_summary(
    text: str,
    category: str | None = None,
    *,
    signal_at: int | bool | None = True,
    language: str | None = None,
) -> str:
    """One third-person sentence of at most 25 words (see the module docstring). With
    `signal_at` (the offset of a severity signal, `gateway.local.signals.signal_spans`), the
    sentence holding it is the one summarised (True, the default: look the signals up here;
    None: there is none); otherwise the first question, else the sentence with the most content
    words. A review's question is never dropped: when the summarised sentence is not one, the
    first question is added to it ("... and asks whether ...?"). `language`: the review's, if
    known (`detect_language`)."""
    sentences = [s for s in _SENTENCE_SPLIT_RE.split(text) if s and _HAS_WORD_RE.search(s)]
    if not sentences:
        return _NO_WORDS_SUMMARY
    if signal_at is True:
        spans = signal_spans(text)
        signal_at = spans[0][1] if spans else None
    chosen = _pick_sentence(text, sentences, None if signal_at is False else signal_at)
    is_question = _is_question(chosen)
    question = next((_clean(s) for s in sentences if _is_question(s)), "")
    clause = _clean(chosen)
    if not _HAS_WORD_RE.search(clause):
        clause = " ".join(chosen.split()).rstrip(".!?")
    lang = language or detect_language(text)
    if lang != "English":
        end = "?" if question else "."
        frame = f"The user {'asks' if question else 'writes'} in {lang}:"
        if lang == "Japanese":
            parts = [clause] if is_question or not question else [clause, question]
            quoted = "。".join(p.rstrip(_CJK_END) for p in parts)
            return (f"{frame} {quoted[:120]}{end}")[:SUMMARY_MAX_CHARS]
        if question and not is_question:  # quote both: the statement, then the question
            clause = f"{clause}. {question}"
        return _finish(frame, clause, end)
    if is_question or (
        category == "Question" and clause.split()[:1] and clause.split()[0].lower() in _WH
    ):
        framed = _question(clause)
        return _finish("The user", framed.removeprefix("The user "), "?")
    frame, body = _statement(clause, category)
    if question:
        return _and_asks(frame, body, question)
    return _finish(frame, body, ".")


def model_triage(
    text: str,
    category: str,
    urgency: str,
    categories: Sequence[str],
    idf: Mapping[str, float],
    default_idf: float,
) -> Triage:
    """A local model's triage of `text` from its predicted `category` and `urgency`: the
    severity signals in the text may raise both; the topic and summary are extracted."""
    spans = signal_spans(text)
    signals = frozenset(kind for kind, _, _ in spans)
    if signals:
        category, urgency = apply_signals(category, urgency, signals, categories)
    lang = detect_language(text)
    topic = extract_topic(
        text,
        idf,
        default_idf,
        default_topic(category),
        signals=signals,
        language=lang,
    )
    signal_at = spans[0][1] if spans else None
    return Triage(
        category=category,
        urgency=urgency,
        topic=topic,
        summary=extract_summary(text, category, signal_at=signal_at, language=lang),
    )

"""Help > Why RNNs forget: a short page, in our own words, pointing at the plots that show it, and what the
Listen tab's "what did it remember" view shows and does not."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

from engine.models import GROUPS, models_in_group, spec

WHY_RNNS_FORGET = """
<h2>Why RNNs forget</h2>
<p>A melody model reads a tune one sixteenth-note step at a time and guesses the next step. To guess
well it must remember: the opening theme that comes back eight bars later, the rhythm of bar one,
the key. How much a model can carry forward is what this app lets you hear and measure.</p>

<h3>The vanilla RNN (red)</h3>
<p>A plain recurrent network squeezes everything it has heard into one small vector, and at every step
it rewrites that vector by multiplying it with the same matrix and passing it through tanh. When the
model learns, the signal that says "this note, 64 steps ago, mattered" has to travel back through all
those multiplications. Each one shrinks it a little (or, rarely, blows it up), so after a few bars it has
all but vanished. The network therefore learns mostly from the last few beats: it keeps the local
style but loses the theme. This is the <i>short-term memory problem</i> (the vanishing gradient).</p>

<h3>Gates: LSTM (blue) and GRU (green)</h3>
<p>Gated networks add a memory lane that is updated by <i>adding</i> rather than overwritten by
multiplying. Small learned gates decide what to keep, what to forget and what to let out. Because the
lane can carry a value forward almost unchanged, the learning signal survives many more steps, and
the model can hold on to a motif for longer.</p>

<h3>Attention (purple)</h3>
<p>The attention model is the very same tanh RNN, with one addition: at every step it may look back
directly at its own earlier states and take what it needs from them. Memory no longer has to survive a
long chain of rewrites; it is a lookup. Comparing red and purple isolates what attention alone adds.
It looks back only over its <i>window</i>: the last 64 steps (4 bars of 4/4) in the tiny preset, 256 steps
(16 bars) in the small one and 512 in the medium one, the same span it was trained on (Train tab, Window).
Anything older reaches it only through its tanh state, as for the plain RNN.</p>

<h3>Transformer (orange)</h3>
<p>A Transformer drops recurrence altogether: every step attends to every earlier step inside its window,
so a note heard 200 steps ago is as close as the previous one. What falls outside its window is gone.
Seeing is not using, though: both attention models drift away from the opening long before it leaves their
window, because they come to draw on their own recent bars (Memory, theme recall per meter; and the
influence view below).</p>

<h3>Where to see it</h3>
<ul>
<li><b>Memory &gt; Theme recall over the rhythm-matched floor</b>: how much more each bar of the continuation
resembles some bar of the opening than the same model's output resembles the opening of the tune whose rhythm
is closest (its own chance level, 0 on the plot: shared rhythm style does not count as memory). A model that
forgets sinks to 0; the dashed line is the real tune. Compare two models by their paired difference (the
table below the plots), and check a reading at every temperature of the sweep.</li>
<li><b>Memory &gt; Gradient memory</b>: how strongly a prediction still depends on a note k steps back,
on a log axis. The red curve falling steeply is the vanishing gradient itself.</li>
<li><b>Memory &gt; Context curve</b>: the loss when a model may see only the last k steps. Where the curve
flattens is the model's <i>effective memory</i>; beyond it, more context does not help.</li>
<li><b>Memory &gt; Theme-recall probe</b>: a motif, a gap of random filler, the motif again. Can the
model complete the repeat? Widen the gap and watch which models fall to chance.</li>
<li><b>Listen</b>: play every model's continuation of the same opening and listen for the theme coming back;
point at a note to see what it drew on (below).</li>
</ul>

<h3>What did it remember? (Listen)</h3>
<p>After Generate, point at a composed note (click to keep it, Esc to clear). Every row lights up the
earlier notes, the opening's included, that its own note at that moment drew on: the darker the note and
the thicker its arc, the more weight it got. Beside each row: how many bars back its notes reach on average,
how many notes that rests on, and the uniform spread, where the average would lie if every note drew evenly on
everything before it (the far extreme, not a chance level: a model that drew only on the previous note would
sit a fraction of a bar back). The real tune's row shows something else: where each note was last played the same
way (its nearest earlier repeat), which is what a good memory could copy.</p>
<p>What the picture says, and what it does not:</p>
<ul>
<li><b>Gradient</b> (every model): how much a tiny change to an earlier note would move the chance of this
note. It is local: it says what the guess is sensitive to right here, not what would happen if the earlier
note were left out or replaced.</li>
<li><b>Attention</b> (tick <i>attention</i> on the attention RNN and the Transformer): where the attention
looked from this note. Attention weights are not explanations on their own: they say where a layer looked,
not what changed the output. What it looked at may already carry earlier notes, and the rest of the model
may make little of it.</li>
<li>Each note's weights are scaled to add up to one, so they say <i>where</i> a model looked, not <i>how
strongly</i> it remembers: a model that hardly uses its past still puts its weight somewhere.</li>
<li>Rests take some of the weight (a model may time its next note from a pause); that part is not drawn.</li>
<li>Only the first 16 bars of each continuation are worked out: the cost grows with the square of the length.</li>
</ul>

<h3>Reading the Memory tab</h3>
<p>Switch theme recall between its excess over each model's own floor and the raw value with that floor
dotted; choose the temperature the continuations were sampled at (a low one can keep the theme by looping:
the distinct-bar rate shows it) and one meter or all. Hover a plot for each value with its 95% interval
and n, the number of openings it rests on: where fewer than the report's minimum reach a bar, nothing is
drawn. Dashed vertical lines mark where the opening leaves an attention window. The length check tells
whether a model gets worse with more context than it was trained on.</p>

<h3 id="glossary">Glossary</h3>
<dl>
<dt><b>Step</b></dt><dd>A sixteenth note: 16 steps make a bar of 4/4, 12 a bar of 6/8.</dd>
<dt><b>Bits per token</b></dt><dd>The training and validation loss (Train tab): how many yes/no questions, on
average, the model still needs to guess the next step. Lower is better; guessing blindly among the 51 tokens a
model can predict costs about 5.7 bits.</dd>
<dt><b>Validation loss</b></dt><dd>The same, on tunes the model never trains on: the thick curves.</dd>
<dt><b>Primer</b></dt><dd>The opening bars of a test tune that every model continues from.</dd>
<dt><b>TR, theme recall</b></dt><dd>For each composed bar: how much it resembles its closest bar of the opening,
from 0 (no notes in common) to 1 (the same notes and rhythm, in any key).</dd>
<dt><b>RR, rhythm recall</b></dt><dd>The same for the rhythm alone: how many of the bar's sixteenth steps start a note
(or not) exactly where the closest bar of the opening does.</dd>
<dt><b>Floor</b></dt><dd>A model's chance level: the TR of its continuation scored against the opening of the
test tune of the same meter whose opening rhythm is closest (the rhythm-matched floor; a random same-meter tune
is the second floor). What any bar of that model's music shares with an opening of the same rhythm by
chance.</dd>
<dt><b>Excess</b></dt><dd>TR minus the floor, primer by primer: the resemblance that only memory of this
opening explains. 0 means forgotten.</dd>
<dt><b>n</b></dt><dd>How many primers a value rests on. Below the report's minimum nothing is drawn.</dd>
<dt><b>95% interval</b></dt><dd>The shaded band or whiskers: where the mean would fall in 95 of 100
resamplings of the primers (bootstrap).</dd>
<dt><b>Window</b></dt><dd>How many steps back the attention models can look (and the crop they were trained on):
the Train tab's Window; dashed lines on the Memory plots mark where the opening leaves it.</dd>
<dt><b>Influence</b></dt><dd>For a composed note, how much each earlier note weighed in it (gradient, or the
attention weights); the Listen tab's arcs and the Memory tab's influence plots.</dd>
<dt><b>Temperature</b></dt><dd>How boldly the models sample: low stays with the likeliest notes (and may
loop), 1 samples as trained.</dd>
<dt><b>Distinct-bar rate</b></dt><dd>Distinct bars over all non-empty bars of a continuation: low means looping.</dd>
<dt><b>Effective memory</b></dt><dd>Where the context curve flattens: more context than that no longer helps.</dd>
</dl>

<h3 id="plots">The plots</h3>
<dl>
<dt><b>Training curves</b> (Train)</dt><dd>Bits per token against the training step: thin lines the training
loss, thick lines with dots the validation loss. The lower a model ends, the better it predicts unseen tunes.</dd>
<dt><b>Piano rolls</b> (Corpus, Listen)</dt><dd>One bar per column, pitch upwards; on the Listen tab the grey part
is the primer, each row one model's continuation and the last the real tune.</dd>
<dt><b>Originality meter</b> (Listen)</dt><dd>How much of a continuation replays the training tunes, two bars at a
time in any key, beside what real tunes of the corpus borrow; gold bands mark the copied bars.</dd>
<dt><b>Recall by distance</b></dt><dd>Teacher-forced on the test tunes: the bits per token a model loses on a bar
when the earlier bars resembling it are replaced by foreign bars of the same rhythm, minus the loss when as many
unrelated bars are replaced (the dotted control), against how far back those bars lie (log axis). Above 0, the
model uses what it heard that far back.</dd>
<dt><b>Theme recall per bar</b></dt><dd>TR of each bar of the continuations, shown as its excess over the floor
(0 = chance) or raw with the floor dotted; the dashed line is the real tune.</dd>
<dt><b>Phase-robust theme recall per bar</b></dt><dd>TR with each bar also compared at shifts of whole beats (the
best shift counts): a continuation that drifts by a beat is not scored as forgetting.</dd>
<dt><b>Pitch-only recall per bar</b></dt><dd>Bars compared by their pitch sequence alone (any transposition, onsets
ignored): beside rhythm recall, which of pitch and rhythm a model keeps.</dd>
<dt><b>Rhythm recall per bar</b></dt><dd>RR of each bar: the rhythm of the opening kept.</dd>
<dt><b>In-key rate per bar</b></dt><dd>The share of each bar's notes in the primer's key: the model keeps the key
even where it forgets the theme.</dd>
<dt><b>Late-bar theme recall against temperature</b></dt><dd>The excess of the late bars at each sampling
temperature of the sweep: a reading that holds at every temperature is not an artefact of one.</dd>
<dt><b>Distinct-bar rate at matched length</b></dt><dd>Distinct bars over all bars, over the same number of bars
for every model and the real tune; <b>Distinct-bar rate over all bars</b> is the same over the whole
continuation. Low means looping.</dd>
<dt><b>Paired differences</b></dt><dd>A table: each pair of models (and each model against the real tune), the
difference of their mean excess on the same primers, with its 95% interval and n.</dd>
<dt><b>Influence distance</b></dt><dd>How far back, in bars, the earlier notes each composed note drew on lie
(share of notes per distance); <b>Mean influence distance between its references</b> places each model between
drawing on the previous note only and drawing evenly on everything before.</dd>
<dt><b>Context curve: loss when only the last k steps are visible</b></dt><dd>Each model's bits per token with k
steps of context; the large dot is its effective memory.</dd>
<dt><b>Length check: NLL with all the context minus the best NLL_k</b></dt><dd>Above zero, a model does worse
with its whole context than with the best cut: it cannot use more than it was trained on.</dd>
<dt><b>Gradient memory G(k)</b></dt><dd>How strongly a prediction depends on the note k steps back (log scale): a
steep fall is the vanishing gradient.</dd>
<dt><b>Loss per bar (teacher-forced, test tunes)</b></dt><dd>Bits per token in each bar of a tune: a model with
memory gets better as the tune repeats itself.</dd>
<dt><b>Repeat gain</b></dt><dd>Bits saved on bars that repeat an earlier bar: whether a model notices and uses
repetition.</dd>
<dt><b>Theme-recall probe</b></dt><dd>Fresh models trained on a motif, g bars of random filler and the motif
again: accuracy on the repeat against the gap g; the dotted line is chance.</dd>
<dt><b>Self-similarity of primer + continuation</b></dt><dd>A heatmap per model: how much each bar resembles each
other bar; bright squares off the diagonal are restatements.</dd>
<dt><b>Summary</b></dt><dd>The table of the headline figures, each with its 95% interval and n.</dd>
</dl>
"""


WIDTH, HEIGHT = 680, 560  # with a title bar, under 600 px: fits a 640-px-high screen whatever screen it opens on


def modern_models_html() -> str:
    """The opt-in models (Train tab, one click away), each in the words of its registry entry."""
    keys = models_in_group("modern")
    if not keys:
        return ""
    parts = [f"<h3>{escape(GROUPS['modern'].capitalize())}</h3>",
             "<p>Recurrent models that train in parallel like a Transformer and still generate one note at a time "
             "with a memory of fixed size, like an RNN. Tick them in the Train tab.</p>"]
    for key in keys:
        s = spec(key)
        parts.append(f'<p><b style="color:{s.colour}">{escape(s.label)}</b>: {escape(s.about)}</p>')
    return "\n".join(parts)


def show_why_rnns_forget(parent=None, anchor: str = "") -> QDialog:
    """The help window: one per main window (a second press raises it), sized to fit a 640-px-high screen
    with its title bar (HEIGHT), smaller on a smaller one; `anchor` ("glossary") scrolls to that part."""
    existing = parent.findChild(QDialog, "helpDialog") if parent is not None else None
    if existing is not None:
        _go_to(existing, anchor)
        existing.show()
        existing.raise_()
        existing.activateWindow()
        return existing
    dialog = QDialog(parent)
    dialog.setObjectName("helpDialog")
    dialog.setWindowTitle("Why RNNs forget")
    screen = (parent.screen() if parent is not None else dialog.screen()).availableGeometry()
    dialog.resize(min(WIDTH, screen.width() - 40), min(HEIGHT, screen.height() - 60))
    text = QTextBrowser()
    text.setAccessibleName("help text")
    text.setOpenExternalLinks(True)
    text.setHtml(WHY_RNNS_FORGET.replace("<h3>Where to see it</h3>", modern_models_html() + "\n<h3>Where to see it</h3>"))
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.close)
    layout = QVBoxLayout(dialog)
    layout.addWidget(text)
    layout.addWidget(buttons)
    dialog.show()
    _go_to(dialog, anchor)
    return dialog


def _go_to(dialog, anchor: str) -> None:
    text = dialog.findChild(QTextBrowser)
    if anchor:
        text.scrollToAnchor(anchor)
    else:
        text.verticalScrollBar().setValue(0)

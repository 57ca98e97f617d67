"""Help > Why RNNs forget: a short page, in our own words, pointing at the plots that show it."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

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
long chain of rewrites; it is a lookup. Comparing red and purple isolates what attention alone adds.</p>

<h3>Transformer (orange)</h3>
<p>A Transformer drops recurrence altogether: every step attends to every earlier step inside its window,
so a note heard 200 steps ago is as close as the previous one. It forgets only what falls outside its
window.</p>

<h3>Where to see it</h3>
<ul>
<li><b>Memory &gt; Theme recall over the matched floor</b>: how much more each bar of the continuation
resembles some bar of the opening than the same model's output resembles another tune's opening (its own
chance level, 0 on the plot). A model that forgets sinks to 0; the dashed line is the real tune.</li>
<li><b>Memory &gt; Gradient memory</b>: how strongly a prediction still depends on a note k steps back,
on a log axis. The red curve falling steeply is the vanishing gradient itself.</li>
<li><b>Memory &gt; Context curve</b>: the loss when a model may see only the last k steps. Where the curve
flattens is the model's <i>effective memory</i>; beyond it, more context does not help.</li>
<li><b>Memory &gt; Theme-recall probe</b>: a motif, a gap of random filler, the motif again. Can the
model complete the repeat? Widen the gap and watch which models fall to chance.</li>
<li><b>Listen</b>: play the five continuations of the same opening and listen for the theme coming back.</li>
</ul>

<h3>Reading the Memory tab</h3>
<p>Switch theme recall between its excess over each model's own floor and the raw value with that floor
dotted; choose the temperature the continuations were sampled at (a low one can keep the theme by looping:
the distinct-bar rate shows it) and one meter or all. Hover a plot for each value with its 95% interval
and n, the number of openings it rests on: where fewer than the report's minimum reach a bar, nothing is
drawn. Dashed vertical lines mark where the opening leaves an attention window. The length check tells
whether a model gets worse with more context than it was trained on.</p>
"""


def show_why_rnns_forget(parent=None) -> QDialog:
    dialog = QDialog(parent)
    dialog.setObjectName("helpDialog")
    dialog.setWindowTitle("Why RNNs forget")
    dialog.resize(640, 700)
    text = QTextBrowser()
    text.setOpenExternalLinks(True)
    text.setHtml(WHY_RNNS_FORGET)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.close)
    layout = QVBoxLayout(dialog)
    layout.addWidget(text)
    layout.addWidget(buttons)
    dialog.show()
    return dialog

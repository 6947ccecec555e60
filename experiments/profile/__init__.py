"""The probes of `python -m repro profile`, one module per kind of component (repro/profiles.py runs them).

A kind's module is an experiment (repro/experiment.py: TITLE, PRESETS, variants, extras, claims) whose
components are a preset parameter, and declares besides:

- ``PARAM``: that parameter's name; the presets list the notes' components, and the profile adds the
  user's after them;
- ``REFERENCES``: the notes' components, each with the verdicts the notes state for it ({probe id: slug});
- ``setting(name)``: the config keys a component sets;
- ``probes(p)``: its repro.profiles.Probe list, each with the bands of its value that its verdicts name.

Its ``extras`` saves ``verdicts`` (repro.profiles.judge), its ``claims`` are repro.profiles.claims and its
``validate`` repro.profiles.validate. The bands of a verdict come from the experiment that shows the
phenomenon (its claims' bounds), named in each module's docstring.
"""
from repro.profiles import Verdict

# The activations' spread from layer to layer at init: the geometric mean of each layer's output sd over
# the layer's below, with the init experiment's bounds (experiments/init.py: ReLU + N(0, 0.01) collapses by
# over 10x a layer; ReLU + Xavier shrinks by about 1/sqrt(2) a layer; ReLU + He stays within 20% over 5
# layers, i.e. within 5% a layer).
SPREAD = (Verdict("collapses", "collapses layer by layer like ReLU + N(0, 0.01)", 0.0, 0.1),
          Verdict("shrinks", "shrinks layer by layer like ReLU + Xavier", 0.1, 0.95),
          Verdict("steady", "keeps its spread steady like ReLU + He", 0.95, 1.05),
          Verdict("grows", "grows layer by layer", 1.05))

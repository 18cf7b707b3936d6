"""The labeling study: replay a labeled dataset through DALT's real components, one task at a time.

For every method (features + head + task order) it simulates an annotator working through the whole
dataset: the task's pre-annotation comes from ``backend.predict.predict_tasks`` (the /predict code path,
reading embeddings from a real Redis through ``backend.store.Store``); the annotator accepts it when it is
right and corrects it when it is wrong; the label is recorded as the webhook records it
(``Store.record_annotation``, plus the live-evaluation hook ``backend.evaluation.record_outcome``); and
the head is retrained with ``backend.training.train_project``, the code the RQ job runs.

Retraining rule (coalesced, as the worker does): a new head after EVERY label up to ``--eager`` labels
(100), then whenever the label count has grown by ``--growth`` (5%) since the last run. In production a
fit takes 0.02-0.4 s while an annotator needs seconds per task, so the worker would retrain after
nearly every label; this rule serves predictions from a head up to 5% of the labels behind, i.e. it is
pessimistic, and ``--growth 0`` retrains after every label (slow: thousands of fits per method).

Modules: ``options`` (the METHODS table and what a run can be told), ``datasets``, ``photos`` (the
colour-photo dataset), ``features``, ``replay`` (one annotator over one method), ``output`` (table, plots,
merging runs), ``runner`` (a whole study), ``sizes`` (the study against project size). ``dalt study`` is the command::

    dalt study --dataset mnist --json docs/study/mnist.json --plot docs/study
    dalt study --dataset digits
    dalt study --dataset PATH          # a folder of images with labels.csv (file,label)
    dalt study --dataset photos --order both   # colour patches, shuffled and one class after another
    dalt study --dataset mnist --sizes 300,1000,2000 --methods contrastive+spread,ae+lr,pca+lr
    dalt study --dataset digits --quick --json out.json   # small and fast (tests)
"""

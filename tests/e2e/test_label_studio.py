"""DALT inside a real Label Studio 1.23.2: annotations train it, Label Studio asks it for predictions.

Everything goes through Label Studio's own API (through label-studio-sdk or plain HTTP): Label Studio
sends the webhooks and calls ``/setup`` and ``/predict`` itself; the tests only read DALT's ``/versions``,
its request log and the store to see what happened.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backend import demo
from backend.labelstudio_server import LabelStudio
from backend.processes import wait_for
from tests.e2e.conftest import Dalt, Mnist, TrainedProject

pytestmark = pytest.mark.e2e


def predictions_of(client, task_id: int, version: str) -> list:
    return [p for p in client.predictions.list(task=task_id) if p.model_version == version]


def predicted_choice(prediction) -> str | None:
    result = prediction.result or []
    return result[0]["value"]["choices"][0] if result else None


def test_annotations_reach_the_backend_as_webhooks_and_train_a_version(
    trained_project: TrainedProject, dalt: Dalt
) -> None:
    p = trained_project
    # Label Studio sent exactly one webhook per saved annotation, synchronously, and nothing else.
    assert p.calls_during_one_annotation == ["POST /webhook"]
    labels = dalt.store.labels(p.pid)
    assert labels == {t: p.truth[t] for t in p.annotated}
    served = {h["version"]: h for h in dalt.store.versions(p.pid)}[dalt.current_version(p.pid)]
    assert served["labels"] == len(p.annotated)
    # Each webhook queues at most one run (fewer when runs coalesce), yet the last run saw every label.
    runs = int(dalt.store.stats(p.pid)["train_runs"]) - p.runs_before_annotating
    assert 1 <= runs <= len(p.annotated)


def test_label_stream_makes_label_studio_call_predict_with_the_new_version(
    trained_project: TrainedProject, label_studio: LabelStudio, dalt: Dalt
) -> None:
    p = trained_project
    # One more annotation, as an annotator submitting a task: a new version that no task has a
    # prediction of yet, so Label Studio must ask the backend when it serves the next task.
    task_id = next(t for t in p.truth if t not in p.annotated)
    before = dalt.current_version(p.pid)
    created = p.client.annotations.create(id=task_id, result=demo.digit_result(p.truth[task_id]))
    p.annotated.append(task_id)
    p.annotation_of[task_id] = created.id
    version = dalt.wait_for_version(p.pid, labels=len(p.annotated), after=before)

    offset = dalt.log_offset()
    task = label_studio.api("GET", f"/api/projects/{p.pid}/next").json()
    calls = dalt.calls_since(offset)
    assert calls[-1:] == ["POST /predict"], f"Label Studio did not ask the backend to predict: {calls}"
    assert task["id"] not in p.annotated
    stored = predictions_of(p.client, task["id"], version)
    assert len(stored) == 1, [(x.model_version, x.result) for x in p.client.predictions.list(task=task["id"])]
    assert predicted_choice(stored[0]) in [str(d) for d in range(10)]
    assert 0 < stored[0].score <= 1


def test_retrieve_predictions_action_on_the_whole_project(
    trained_project: TrainedProject, dalt: Dalt
) -> None:
    p = trained_project
    version = dalt.current_version(p.pid)
    offset = dalt.log_offset()
    p.client.actions.create(id="retrieve_tasks_predictions", project=p.pid,
                            selected_items={"all": True, "excluded": []})
    assert dalt.calls_since(offset).count("POST /predict") >= 1
    right = total = 0
    kinds = {"upload": 0, "local": 0}
    for task in project_tasks(p):
        stored = predictions_of(p.client, task.id, version)
        assert len(stored) == 1, f"task {task.id} has no prediction of {version}"
        choice = predicted_choice(stored[0])
        assert choice is not None, f"task {task.id}: empty prediction"
        kinds["local" if "local-files" in task.data["image"] else "upload"] += 1
        if task.id not in p.annotated:
            total += 1
            right += choice == p.truth[task.id]
    assert kinds["upload"] == p.uploaded and kinds["local"] == p.local
    accuracy = right / total
    print(f"accuracy on {total} unlabeled tasks with {len(p.annotated)} labels: {accuracy:.2f}")
    # Ten classes: chance is 0.1. "Mostly right" with a small autoencoder and a few labels per class.
    assert accuracy >= 0.5, f"only {right}/{total} unlabeled tasks predicted right"


def project_tasks(p: TrainedProject) -> list:
    return list(p.client.tasks.list(project=p.pid))


def test_updating_and_deleting_annotations_retrains(
    trained_project: TrainedProject, dalt: Dalt
) -> None:
    p = trained_project
    task_id = p.annotated[0]
    annotation_id = p.annotation_of[task_id]
    wrong = str((int(p.truth[task_id]) + 1) % 10)
    before = dalt.current_version(p.pid)

    p.client.annotations.update(id=annotation_id, result=demo.digit_result(wrong))
    assert dalt.store.labels(p.pid)[task_id] == wrong
    updated = dalt.wait_for_version(p.pid, labels=len(p.annotated), after=before)

    p.client.annotations.delete(id=annotation_id)
    assert task_id not in dalt.store.labels(p.pid)
    deleted = dalt.wait_for_version(p.pid, labels=len(p.annotated) - 1, after=updated)
    assert int(deleted.lstrip("v")) > int(updated.lstrip("v")) > int(before.lstrip("v"))

    # Put the label back so that later tests see the full set again.
    created = p.client.annotations.create(id=task_id, result=demo.digit_result(p.truth[task_id]))
    p.annotation_of[task_id] = created.id
    dalt.wait_for_version(p.pid, labels=len(p.annotated), after=deleted)


def test_start_training_with_unchanged_labels_is_stale(trained_project: TrainedProject, dalt: Dalt) -> None:
    """START_TRAINING from the Model settings runs a fit, which declines to publish: nothing changed."""
    p = trained_project
    wait_for(lambda: dalt.settled(p.pid), timeout=120, what="training to settle before START_TRAINING")
    served = dalt.current_version(p.pid)
    outcomes = ("train_published", "train_stale", "train_skipped", "train_failures")
    before = dalt.store.stats(p.pid)

    def outcome() -> dict[str, int]:
        after = dalt.store.stats(p.pid)
        return {k: int(after.get(k, 0) - before.get(k, 0)) for k in outcomes}

    offset = dalt.log_offset()
    p.client.ml.train(id=p.ml_backend_id)
    assert "POST /webhook" in dalt.calls_since(offset)
    wait_for(lambda: sum(outcome().values()) and dalt.settled(p.pid), timeout=60,
             what="the run START_TRAINING queued")
    # Same labels, encoder and head kind as the served model: the run fits and reports stale.
    assert outcome() == {"train_published": 0, "train_stale": 1, "train_skipped": 0, "train_failures": 0}
    assert dalt.current_version(p.pid) == served


def test_personal_access_token_instead_of_legacy_key(
    label_studio: LabelStudio, e2e_redis: str, e2e_dir: Path, mnist: Mnist
) -> None:
    """The PAT drives the API client, the bulk encoder and the backend's own downloads."""
    pat = label_studio.create_personal_access_token()
    client = label_studio.sdk(api_key=pat)
    pid = client.projects.create(title="digits via PAT", label_config=demo.DIGITS_LABEL_CONFIG).id
    images = demo.write_mnist_pngs(e2e_dir / "pat-images", 60, offset=1000)
    access = client.tokens.refresh(refresh=pat).access
    demo.upload_images(label_studio, pid, [path for path, _ in images[:50]],
                  headers={"Authorization": f"Bearer {access}"})

    # A backend whose only credential is the PAT (no legacy key anywhere in its environment).
    from tests.e2e.conftest import start_dalt

    pat_dalt = start_dalt(e2e_redis, label_studio, e2e_dir / "dalt-pat", api_key=pat)
    try:
        demo.connect_backend(client, pid, pat_dalt.url)
        pat_dalt.encode(pid, pat, "--epochs", "5")
        tasks = list(client.tasks.list(project=pid))
        for task in tasks[:20]:
            client.annotations.create(id=task.id, result=demo.digit_result(mnist.label_of(task.data["image"])))
        version = pat_dalt.wait_for_version(pid, labels=20)
        # New uploads after encoding: the backend downloads and encodes them on the fly with the PAT.
        demo.upload_images(label_studio, pid, [path for path, _ in images[50:]],
                      headers={"Authorization": f"Bearer {access}"})
        client.actions.create(id="retrieve_tasks_predictions", project=pid,
                              selected_items={"all": True, "excluded": []})
        tasks = list(client.tasks.list(project=pid))
        assert len(tasks) == 60
        for task in tasks:
            stored = predictions_of(client, task.id, version)
            assert len(stored) == 1 and predicted_choice(stored[0]) is not None, (
                f"task {task.id} ({task.data['image']}) got no prediction of {version}\n"
                + pat_dalt.processes[0].tail()
            )
    finally:
        pat_dalt.stop()

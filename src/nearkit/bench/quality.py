"""Classification quality of one engine on one split, every figure from ``sklearn.metrics``.

Binary problems score the larger label (1 in the report's datasets) as the positive class;
multiclass problems use macro averages and one-vs-rest ROC-AUC.  ROC-AUC is computed from
``predict_proba``, i.e. the vote proportions.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics


def quality_metrics(y_true, y_pred, proba, classes, beta=2.0):
    """Confusion matrix, accuracy, precision, recall, F1, F-beta and ROC-AUC.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    proba : ndarray of shape (n, n_classes)
        Vote proportions, columns in ``classes`` order.
    classes : array-like of shape (n_classes,)
        Sorted class labels.
    beta : float, default=2
        Weight of recall in the F-beta score.

    Returns
    -------
    dict
        JSON-ready figures; ``roc_auc`` is None when ``y_true`` holds a single class.

    Examples
    --------
    >>> import numpy as np
    >>> q = quality_metrics([0, 1, 1, 0], [0, 1, 0, 0], np.array([[1, 0], [0, 1], [.6, .4], [.8, .2]]), [0, 1])
    >>> q["accuracy"], q["recall"], q["roc_auc"]
    (0.75, 0.5, 1.0)
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    classes = np.asarray(classes)
    proba = np.asarray(proba, dtype=np.float64)
    binary = classes.size == 2
    average = "binary" if binary else "macro"
    kwargs = {"average": average, "zero_division": 0}
    if binary:
        kwargs["pos_label"] = classes[1]
    out = {
        "average": average,
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
        "precision": float(metrics.precision_score(y_true, y_pred, labels=classes, **kwargs)),
        "recall": float(metrics.recall_score(y_true, y_pred, labels=classes, **kwargs)),
        "f1": float(metrics.f1_score(y_true, y_pred, labels=classes, **kwargs)),
        "fbeta": float(metrics.fbeta_score(y_true, y_pred, beta=beta, labels=classes, **kwargs)),
        "roc_auc": None,
    }
    if np.unique(y_true).size == classes.size:
        if binary:
            out["roc_auc"] = float(metrics.roc_auc_score(y_true, proba[:, 1]))
        else:
            out["roc_auc"] = float(
                metrics.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
            )
    return out


def roc_points(y_true, score, positive):
    """False- and true-positive rates of the ROC curve (``sklearn.metrics.roc_curve``)."""
    fpr, tpr, _ = metrics.roc_curve(np.asarray(y_true), np.asarray(score), pos_label=positive)
    return fpr, tpr

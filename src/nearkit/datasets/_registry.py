"""The five report datasets: where each file comes from, its checksums, schema and preprocessing.

Everything here is data, transcribed from ``MANIFEST.md`` of the seed datasets; the loading code
(:mod:`._files`, :mod:`._tables`) only interprets it.  Order matters: it is the report's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Part:
    """One file of a GitHub repository, fetched from ``<base>/<repo>/<commit>/<path>``."""

    path: str
    git_blob: str


@dataclass(frozen=True)
class DatasetSpec:
    """How one report dataset is fetched, verified and turned into ``X`` and ``y``.

    Column order in ``X`` follows the file; a categorical column is replaced in place by its
    one-hot columns ``f"{column}_{level}"`` in the order of ``categoricals[column]``, a
    two-level column listed in ``binary`` by the single column ``f"{column}_{level}"``.
    """

    name: str
    filename: str
    origin: str
    repo: str
    commit: str
    parts: tuple[Part, ...]
    sha256: str
    n_rows: int
    columns: tuple[str, ...]
    target_column: str
    target_rule: str
    #: ``y = column >= target_threshold``; ``None`` means the column already is 0/1.
    target_threshold: float | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    categoricals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    binary: dict[str, str] = field(default_factory=dict)
    booleans: tuple[str, ...] = ()
    missing_zeros: tuple[str, ...] = ()
    #: rows with a repeated value in this column are dropped (the first is kept) before anything.
    dedup_key: str | None = None
    #: rows dropped by ``dedup_key`` and fraction of positives in ``y``, measured on the file.
    n_duplicates: int = 0
    positive_fraction: float = 0.5
    notes: tuple[str, ...] = ()
    #: the full original, accepted in place of the subset when its git blob id matches.
    full_git_blob: str | None = None
    full_n_rows: int | None = None

    @property
    def feature_names(self) -> list[str]:
        """Names of the columns of ``X``, in order."""
        names = []
        for column in self.columns:
            if column == self.target_column or column in self.dropped:
                continue
            if column in self.categoricals:
                names.extend(f"{column}_{level}" for level in self.categoricals[column])
            elif column in self.binary:
                names.append(f"{column}_{self.binary[column]}")
            else:
                names.append(column)
        return names


_IDENTIFIER = "an identifier (unique per row): carries no information about the target"

SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="social_network_ads",
            filename="social_network_ads.csv",
            origin='Kaggle "Social Network Ads" (SuperDataScience Machine Learning A-Z)',
            repo="HodaEbrahimMosaad/Social-Network-ads-Boost",
            commit="c4a840c4b47c8f95d62013fd73c05a17fe4e71e7",
            parts=(Part("Social_Network_Ads.csv", "e139deabf505a3547a057088a49fc86c039b246c"),),
            sha256="0904954f013068b32ce10606bb26ef45da020732cdd48d0f1d61f4bcc14b3742",
            n_rows=400,
            columns=("User ID", "Gender", "Age", "EstimatedSalary", "Purchased"),
            target_column="Purchased",
            target_rule="Purchased == 1 (the user bought the advertised product)",
            dropped={"User ID": _IDENTIFIER},
            binary={"Gender": "Male"},
            positive_fraction=143 / 400,
            notes=(
                "20 rows repeat another row's Gender, Age, EstimatedSalary and label; "
                "one such group has conflicting labels.",
            ),
        ),
        DatasetSpec(
            name="bank_churn",
            filename="bank_churn.csv",
            origin='Kaggle "Churn Modelling" (bank customer churn)',
            repo="kashifmalik962/Datasets",
            commit="003a1d7966c153771cfc74e21865f25342dd85ec",
            parts=(Part("Churn_Modelling.csv", "3cbdbd08e0fc67bd7dd517a50e0c32ad88a0e8cd"),),
            sha256="3996cd1fa372e0db0cd9c0ebac35bbd4e8e3c65fb942bb010c826e7b1eeef0a0",
            n_rows=10_000,
            columns=(
                "RowNumber", "CustomerId", "Surname", "CreditScore", "Geography", "Gender",
                "Age", "Tenure", "Balance", "NumOfProducts", "HasCrCard", "IsActiveMember",
                "EstimatedSalary", "Exited",
            ),
            target_column="Exited",
            target_rule="Exited == 1 (the customer left the bank)",
            dropped={
                "RowNumber": "row number of the file, " + _IDENTIFIER,
                "CustomerId": _IDENTIFIER,
                "Surname": "a name: identifies a person, 2,932 levels, no causal link to churn",
            },
            categoricals={
                "Geography": ("France", "Germany", "Spain"),
                "Gender": ("Female", "Male"),
            },
            positive_fraction=2037 / 10_000,
            notes=("3,617 rows have Balance exactly 0: a real balance, kept as is.",),
        ),
        DatasetSpec(
            name="spotify_tracks",
            filename="spotify_tracks.csv",
            origin='Kaggle "Spotify Tracks Dataset" (maharshipandya), a 22,800-row subset',
            repo="ManasDeshmukh178/smai-m24-assignments",
            commit="760903ce5b46b439d9ed2ccc46a96ec1ba013dcc",
            parts=(
                Part("data/external/spotify-2/test.csv", "eb6d0834c5efd7ef7af48fcba514871c15ef2487"),
                Part(
                    "data/external/spotify-2/validate.csv",
                    "7d5e4d211a881031ab59611ce7be1fba6fad314b",
                ),
            ),
            sha256="63f7063ac6978d11a1e77418b81c90f5befa9c26669ed111047a8ae320950d58",
            n_rows=22_800,
            columns=(
                "Unnamed: 0", "track_id", "artists", "album_name", "track_name", "popularity",
                "duration_ms", "explicit", "danceability", "energy", "key", "loudness", "mode",
                "speechiness", "acousticness", "instrumentalness", "liveness", "valence",
                "tempo", "time_signature", "track_genre",
            ),
            target_column="popularity",
            target_rule="popularity >= 50 (after dropping repeated track_ids, keeping the first)",
            target_threshold=50,
            dropped={
                "Unnamed: 0": "row number in the original 114,000-row file, " + _IDENTIFIER,
                "track_id": "identifier of the track (used first, to drop repeated tracks)",
                "artists": "free text naming the track (tens of thousands of levels)",
                "album_name": "free text naming the track (tens of thousands of levels)",
                "track_name": "free text naming the track (tens of thousands of levels)",
                "track_genre": (
                    "114 levels: one-hot would add 114 sparse 0/1 columns that outweigh the "
                    "14 audio features in every distance"
                ),
            },
            booleans=("explicit",),
            dedup_key="track_id",
            n_duplicates=1272,
            positive_fraction=5495 / 21_528,
            notes=(
                "The stored file is not the full dataset: it is the course splits test.csv "
                "followed by validate.csv (its header line dropped), 22,800 of the 114,000 rows, "
                "all 114 genres with 174 to 232 rows each.",
                "The same track appears under several genres; repeated track_ids are dropped "
                "before any split, or a test row would have an identical twin in training.",
            ),
            full_git_blob="623114a306a820ed68a77be900643aa1f10764f8",
            full_n_rows=114_000,
        ),
        DatasetSpec(
            name="loan_approval",
            filename="loan_approval.csv",
            origin="Kaggle taweilo/loan-approval-classification-data",
            repo="pornpipatKhumjhom/data_science_projects",
            commit="ef78b184edc6fd780f1d78182895c9bbb739a304",
            parts=(
                Part(
                    "loan_approval_classification/loan_data.csv",
                    "bb84bf8533fae7872dbbeeff219ff02903ab1f01",
                ),
            ),
            sha256="67cca604cd71cbd605014f721d078d20d44d726d625945591450733535f9868a",
            n_rows=45_000,
            columns=(
                "person_age", "person_gender", "person_education", "person_income",
                "person_emp_exp", "person_home_ownership", "loan_amnt", "loan_intent",
                "loan_int_rate", "loan_percent_income", "cb_person_cred_hist_length",
                "credit_score", "previous_loan_defaults_on_file", "loan_status",
            ),
            target_column="loan_status",
            target_rule="loan_status == 1 (the loan was approved)",
            categoricals={
                "person_gender": ("female", "male"),
                "person_education": ("Associate", "Bachelor", "Doctorate", "High School", "Master"),
                "person_home_ownership": ("MORTGAGE", "OTHER", "OWN", "RENT"),
                "loan_intent": (
                    "DEBTCONSOLIDATION", "EDUCATION", "HOMEIMPROVEMENT", "MEDICAL", "PERSONAL",
                    "VENTURE",
                ),
                "previous_loan_defaults_on_file": ("No", "Yes"),
            },
            positive_fraction=10_000 / 45_000,
            notes=(
                "Numbers are written as floats (22.0, 35000.0).",
                "Implausible outliers from the Kaggle source are kept: person_age up to 144, "
                "person_emp_exp up to 125, person_income up to 7,200,766.",
            ),
        ),
        DatasetSpec(
            name="pima_diabetes",
            filename="pima_diabetes.csv",
            origin="Kaggle uciml/pima-indians-diabetes-database",
            repo="prasertcbs/basic-dataset",
            commit="a53613f61acc18b9ff46a5c018336d2f9ba0187b",
            parts=(Part("diabetes.csv", "db6f317685a4668bc0529b16ea1544022e780002"),),
            sha256="698c203a14aa31941d2251175330c9199f3ccdb31597abbba2a3e35416257a72",
            n_rows=768,
            columns=(
                "Pregnancies", "Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI",
                "DiabetesPedigreeFunction", "Age", "Outcome",
            ),
            target_column="Outcome",
            target_rule="Outcome == 1 (diabetes diagnosed)",
            missing_zeros=("Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI"),
            positive_fraction=268 / 768,
        ),
    )
}

#: scikit-learn's bundled datasets, available offline: name -> loader function name.
BUNDLED: dict[str, str] = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
}


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of a report dataset, or a ``ValueError`` listing the names."""
    try:
        return SPECS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in [*SPECS, *BUNDLED])
        raise ValueError(f"unknown dataset {name!r}; known datasets: {known}") from None

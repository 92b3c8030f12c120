"""Condition types and reasons the operator writes, in one place so that the reconcilers,
the docs and `kubectl wait --for=condition=...` users agree on the spelling.

MLTechnology conditions:

| type            | True when                                                         |
|-----------------|-------------------------------------------------------------------|
| Ready           | the spec is valid and the effective level has reached targetLevel |
| ServingAllowed  | the effective level meets the serving gate                        |
| Serving         | the InferenceService exists, is not stopped and reports Ready     |
| Degraded        | an InferenceService is kept serving below the required level      |
| ComponentsReady | every component exists and is at least at this technology's level |
| EntryApproved   | the entry level is within the policy's entry.maxLevel, or reached |
| ModelApproved   | spec.model is the model approved at the current level             |
| Certified       | the current level's last review is within the policy's validFor   |

LevelReview conditions:

| type      | True when                                               |
|-----------|---------------------------------------------------------|
| Evaluated | the review was evaluated (its reason tells the outcome) |
| Applied   | the review moved the technology                         |

MLTRLPolicy conditions:

| type  | True when                                    |
|-------|----------------------------------------------|
| Valid | the policy's spec breaks none of the rules   |

MLTRLWaiver conditions (domain.waivers.waiver_applies decides):

| type   | True when                                                        |
|--------|------------------------------------------------------------------|
| Active | the waiver counts now: approved by a named approver, not expired |

Reasons (CamelCase, machine-readable; the message says the rest):

| reason                       | condition              | meaning                                  |
|------------------------------|------------------------|------------------------------------------|
| AtTargetLevel                | Ready=True             | the effective level reached targetLevel  |
| BelowTargetLevel             | Ready=False            | the own level is below targetLevel       |
| ValidationFailed             | Ready=False            | the spec breaks rules; the message lists |
| LevelMeetsServingRequirement | ServingAllowed=True    | effective level >= serving requirement   |
| LevelBelowServingRequirement | ServingAllowed=False,  | effective level < serving requirement    |
|                              | Serving=False          |                                          |
| InferenceServiceReady        | Serving=True           | the InferenceService reports Ready       |
| InferenceServiceNotReady     | Serving=False          | not created yet, or not Ready            |
| InferenceServiceStopped      | Serving=False          | stopped with serving.kserve.io/stop      |
| ServingDisabled              | Serving=False          | spec.serving.enabled is false            |
| NoModel                      | Serving=False          | spec.model is not set                    |
| KeptBelowRequiredLevel       | Degraded=True          | served below the gate (keep or audit)    |
| AsExpected                   | Degraded=False         | nothing is served below the gate         |
| NoComponents                 | ComponentsReady=True   | not composed of other technologies       |
| ComponentsAtLevel            | ComponentsReady=True   | each component is at least at this level |
| ComponentMissing             | ComponentsReady=False, | a component is missing or has no level   |
|                              | Ready=False            |                                          |
| ComponentBelowLevel          | ComponentsReady=False, | a component lowers the effective level   |
|                              | Ready=False            |                                          |
| Demoted                      | Event                  | an alert switched the technology back    |
| RolledBack                   | Event                  | an alert rolled serving back to a known- |
|                              |                        | good model                               |
| AllRequirementsMet           | Evaluated=True         | the review is Approved                   |
| RequirementsUnmet            | Evaluated=True         | Pending; status.unmet says why           |
| TechnologyNotFound           | Evaluated=True         | Pending; the technology does not exist   |
| ReviewRejected               | Evaluated=True         | a reviewer rejected it                   |
| ReviewInvalid                | Evaluated=True         | the review breaks a rule                 |
| ReviewSuperseded             | Evaluated=True         | the technology moved on since it opened  |
| ReviewApplied                | Evaluated=True,        | the review moved the technology          |
|                              | Applied=True           |                                          |
| ReviewNotApplied             | Applied=False          | the review has not moved it (yet)        |
| PolicyValid                  | Valid=True             | the policy breaks no rule                |
| PolicyInvalid                | Valid=False            | the message lists the broken rules       |
| EntryWithinPolicy            | EntryApproved=True     | entryLevel <= the policy's maxLevel      |
| EntryReviewed                | EntryApproved=True     | an entry review reached the entry level  |
| EntryReviewRequired          | EntryApproved=False    | started at maxLevel; needs an entry      |
|                              |                        | review (also a Warning event)            |
| OwnerChanged                 | Event                  | spec.owner changed; status.owners has it |
| Applies                      | Active=True            | the waiver counts until its expiresAt    |
| OtherTechnology              | Active=False           | it waives another technology             |
| TechnologyNotFound           | Active=False           | (also) its technology does not exist     |
| InvalidExpiry                | Active=False           | expiresAt cannot be read                 |
| Expired                      | Active=False           | expiresAt has passed                     |
| LongerThanMaxDuration        | Active=False           | longer than the policy's maxDuration     |
| NotApproved                  | Active=False           | no approval by a named approver counts   |
| ModelReviewed                | ModelApproved=True     | spec.model is the approved model         |
| PendingChangeReview          | ModelApproved=False    | a new spec.model waits for a change      |
|                              |                        | review; the approved model serves        |
| NoExpiry                     | Certified=True         | no policy gives the level a validFor     |
| Current                      | Certified=True         | reviewed within validFor                 |
| ExpiringSoon                 | Certified=True         | lapses within warnBefore (also an event) |
| Expired                      | Certified=False        | validFor passed since the last review    |
| CertificationLapsed          | ServingAllowed=False   | onExpiry stop/demote closed the gate     |
| ModelChangeHeld              | Event                  | a new model waits for its change review  |
| ModelChangeDemoted           | Event                  | a new model switched the level back      |
| ModelChangeApproved          | Event                  | a change review adopted the new model    |
| Recertified                  | Event                  | a recertify review renewed the level     |
| CertificationExpiring        | Event                  | the level lapses within warnBefore       |
| CertificationExpired         | Event                  | the level lapsed (onExpiry applied)      |
"""

from __future__ import annotations

from typing import Final

from mltrl_operator.api.review import ReviewPhase

READY: Final = "Ready"
SERVING_ALLOWED: Final = "ServingAllowed"
SERVING: Final = "Serving"
DEGRADED: Final = "Degraded"
COMPONENTS_READY: Final = "ComponentsReady"
ENTRY_APPROVED: Final = "EntryApproved"
MODEL_APPROVED: Final = "ModelApproved"
CERTIFIED: Final = "Certified"
TECHNOLOGY_CONDITION_TYPES: Final = (
    READY, SERVING_ALLOWED, SERVING, DEGRADED, COMPONENTS_READY, ENTRY_APPROVED,
    MODEL_APPROVED, CERTIFIED,
)

EVALUATED: Final = "Evaluated"
APPLIED: Final = "Applied"
REVIEW_CONDITION_TYPES: Final = (EVALUATED, APPLIED)

VALID: Final = "Valid"
POLICY_CONDITION_TYPES: Final = (VALID,)

ACTIVE: Final = "Active"
WAIVER_CONDITION_TYPES: Final = (ACTIVE,)

AT_TARGET_LEVEL: Final = "AtTargetLevel"
BELOW_TARGET_LEVEL: Final = "BelowTargetLevel"
VALIDATION_FAILED: Final = "ValidationFailed"
LEVEL_MEETS_SERVING_REQUIREMENT: Final = "LevelMeetsServingRequirement"
LEVEL_BELOW_SERVING_REQUIREMENT: Final = "LevelBelowServingRequirement"
INFERENCE_SERVICE_READY: Final = "InferenceServiceReady"
INFERENCE_SERVICE_NOT_READY: Final = "InferenceServiceNotReady"
INFERENCE_SERVICE_STOPPED: Final = "InferenceServiceStopped"
SERVING_DISABLED: Final = "ServingDisabled"
NO_MODEL: Final = "NoModel"
KEPT_BELOW_REQUIRED_LEVEL: Final = "KeptBelowRequiredLevel"
AS_EXPECTED: Final = "AsExpected"
NO_COMPONENTS: Final = "NoComponents"
COMPONENTS_AT_LEVEL: Final = "ComponentsAtLevel"
COMPONENT_MISSING: Final = "ComponentMissing"
COMPONENT_BELOW_LEVEL: Final = "ComponentBelowLevel"
DEMOTED: Final = "Demoted"
ROLLED_BACK: Final = "RolledBack"
ALL_REQUIREMENTS_MET: Final = "AllRequirementsMet"
REQUIREMENTS_UNMET: Final = "RequirementsUnmet"
TECHNOLOGY_NOT_FOUND: Final = "TechnologyNotFound"
REVIEW_REJECTED: Final = "ReviewRejected"
REVIEW_INVALID: Final = "ReviewInvalid"
REVIEW_SUPERSEDED: Final = "ReviewSuperseded"
REVIEW_APPLIED: Final = "ReviewApplied"
REVIEW_NOT_APPLIED: Final = "ReviewNotApplied"
POLICY_VALID: Final = "PolicyValid"
POLICY_INVALID: Final = "PolicyInvalid"
ENTRY_WITHIN_POLICY: Final = "EntryWithinPolicy"
ENTRY_REVIEWED: Final = "EntryReviewed"
ENTRY_REVIEW_REQUIRED: Final = "EntryReviewRequired"
OWNER_CHANGED: Final = "OwnerChanged"
WAIVER_APPLIES: Final = "Applies"
OTHER_TECHNOLOGY: Final = "OtherTechnology"
INVALID_EXPIRY: Final = "InvalidExpiry"
EXPIRED: Final = "Expired"
LONGER_THAN_MAX_DURATION: Final = "LongerThanMaxDuration"
NOT_APPROVED: Final = "NotApproved"
MODEL_REVIEWED: Final = "ModelReviewed"
PENDING_CHANGE_REVIEW: Final = "PendingChangeReview"
NO_EXPIRY: Final = "NoExpiry"
CURRENT: Final = "Current"
EXPIRING_SOON: Final = "ExpiringSoon"
CERTIFICATION_LAPSED: Final = "CertificationLapsed"
MODEL_CHANGE_HELD: Final = "ModelChangeHeld"
MODEL_CHANGE_DEMOTED: Final = "ModelChangeDemoted"
MODEL_CHANGE_APPROVED: Final = "ModelChangeApproved"
RECERTIFIED: Final = "Recertified"
CERTIFICATION_EXPIRING: Final = "CertificationExpiring"
CERTIFICATION_EXPIRED: Final = "CertificationExpired"

REASONS: Final = (
    AT_TARGET_LEVEL,
    BELOW_TARGET_LEVEL,
    VALIDATION_FAILED,
    LEVEL_MEETS_SERVING_REQUIREMENT,
    LEVEL_BELOW_SERVING_REQUIREMENT,
    INFERENCE_SERVICE_READY,
    INFERENCE_SERVICE_NOT_READY,
    INFERENCE_SERVICE_STOPPED,
    SERVING_DISABLED,
    NO_MODEL,
    KEPT_BELOW_REQUIRED_LEVEL,
    AS_EXPECTED,
    NO_COMPONENTS,
    COMPONENTS_AT_LEVEL,
    COMPONENT_MISSING,
    COMPONENT_BELOW_LEVEL,
    DEMOTED,
    ROLLED_BACK,
    ALL_REQUIREMENTS_MET,
    REQUIREMENTS_UNMET,
    TECHNOLOGY_NOT_FOUND,
    REVIEW_REJECTED,
    REVIEW_INVALID,
    REVIEW_SUPERSEDED,
    REVIEW_APPLIED,
    REVIEW_NOT_APPLIED,
    POLICY_VALID,
    POLICY_INVALID,
    ENTRY_WITHIN_POLICY,
    ENTRY_REVIEWED,
    ENTRY_REVIEW_REQUIRED,
    OWNER_CHANGED,
    WAIVER_APPLIES,
    OTHER_TECHNOLOGY,
    INVALID_EXPIRY,
    EXPIRED,
    LONGER_THAN_MAX_DURATION,
    NOT_APPROVED,
    MODEL_REVIEWED,
    PENDING_CHANGE_REVIEW,
    NO_EXPIRY,
    CURRENT,
    EXPIRING_SOON,
    CERTIFICATION_LAPSED,
    MODEL_CHANGE_HELD,
    MODEL_CHANGE_DEMOTED,
    MODEL_CHANGE_APPROVED,
    RECERTIFIED,
    CERTIFICATION_EXPIRING,
    CERTIFICATION_EXPIRED,
)

# A Pending review whose technology is missing gets TECHNOLOGY_NOT_FOUND instead; the
# review reconciler knows which case it is in.
EVALUATED_REASONS: Final[dict[ReviewPhase, str]] = {
    ReviewPhase.PENDING: REQUIREMENTS_UNMET,
    ReviewPhase.APPROVED: ALL_REQUIREMENTS_MET,
    ReviewPhase.REJECTED: REVIEW_REJECTED,
    ReviewPhase.INVALID: REVIEW_INVALID,
    ReviewPhase.SUPERSEDED: REVIEW_SUPERSEDED,
    ReviewPhase.APPLIED: REVIEW_APPLIED,
}

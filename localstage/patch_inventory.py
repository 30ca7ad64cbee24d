"""Every change the local stage makes to a dependency's internals, in one table (``localstage.patches``).

Each entry names the package whose version the change was checked against (``WRITTEN_FOR``), the owner
(a module, a class, or for ``instance`` entries the class of an object the stage makes at run time), the
attribute replaced, why, and the tests that fail without it, driving the dependency's own code path
through the patch. ``Patches.wrap`` refuses any target not listed here, so this table is the whole list
a dependency upgrade must re-read (docs/local-stage.md, "The compatibility layer").
"""

from __future__ import annotations

from dataclasses import dataclass

from localstage.patch_inventory_deploy import DEPLOY_ENTRIES


@dataclass(frozen=True)
class PatchTarget:
    """One attribute of a dependency the stage replaces."""

    package: str  # the distribution whose version is checked (WRITTEN_FOR)
    owner: str  # module or class path (instance entries: the class of the object, or a base class)
    attribute: str
    why: str
    proof: tuple[str, ...]  # tests/...py::test_name: fail without this entry's change
    instance: bool = False


_PATCHES = "tests/integration/test_localstage_patches.py"
_MOTO_PATCHES = "tests/unit/test_localstage_moto_patches.py"
_XRAY_UNIT = "tests/unit/test_localstage_xray.py"
_XRAY = "tests/integration/test_localstage_xray.py"
_EVENTS = "tests/integration/test_localstage_events.py"
_RUNTIME = "tests/integration/test_localstage_runtime.py"
_TRACING = "tests/e2e/test_stage_tracing.py"
_IAM = "tests/e2e/test_iam.py"
_SFN_TASKS = "tests/integration/test_localstage_sfn_tasks.py"
_SPEEDUPS = "tests/unit/test_localstage_moto_speedups.py"
_SPEEDUP_WRITES = "tests/unit/test_localstage_moto_speedups_writes.py"
_DISPATCH = "tests/integration/test_localstage_moto_dispatch.py"

_DYNAMODB_LOCK = f"{_PATCHES}::test_given_the_write_lock_held_when_moto_writes_then_the_write_waits_for_it"
_DYNAMODB_READ = f"{_PATCHES}::test_given_an_update_in_progress_when_moto_answers_a_read_then_it_waits_for_it"
_DYNAMODB_ANSWER = f"{_PATCHES}::test_given_an_update_answering_all_new_when_another_write_follows_then_it_is_its_own"
_READS = ("get_item", "batch_get_item", "query", "scan", "transact_get_items")
_TRACED_REQUEST = (
    f"{_XRAY}::test_given_a_traced_request_when_moto_delivers_to_a_queue_then_the_message_keeps_the_header"
)
_ORDER_HANDOFFS = f"{_TRACING}::test_given_an_order_trace_then_the_hand_offs_hang_from_the_calls_that_made_them"
_SDK_CONTEXT = (
    f"{_XRAY_UNIT}::test_given_the_sdk_context_when_a_call_is_traced_in_an_invocation_then_it_joins_its_trace"
)
_STEP_PATHS = f"{_MOTO_PATCHES}::test_given_the_caches_when_moto_runs_executions_then_paths_and_definitions_parse_once"


def _moto(owner: str, attribute: str, why: str, *proof: str, instance: bool = False) -> PatchTarget:
    return PatchTarget("moto", owner, attribute, why, proof, instance)


_STATE_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task"
_XRAY_RECORDER = "aws_xray_sdk.core.recorder.AWSXRayRecorder"

INVENTORY: tuple[PatchTarget, ...] = (
    # -- DynamoDB: one lock around moto's writes and item handlers (moto_patches.py) ----------------
    *(
        _moto(
            "moto.dynamodb.models.DynamoDBBackend", name, "moto's writes are not atomic across threads", _DYNAMODB_LOCK
        )
        for name in ("put_item", "update_item", "delete_item")
    ),
    _moto(
        "moto.dynamodb.models.DynamoDBBackend",
        "transact_write_items",
        "a cancelled transaction restores a copy of the table, undoing other threads' writes; and that copy "
        "is of every item of every table it names (moto_speedups.py: an undo record of the keys it names)",
        f"{_PATCHES}::test_given_a_transaction_being_cancelled_when_another_thread_writes_then_its_write_survives",
        f"{_SPEEDUP_WRITES}::test_given_the_speedup_when_a_transaction_runs_on_a_large_table_then_only_its_keys_are_copied",
    ),
    _moto(
        "moto.dynamodb.parsing.expressions.UpdateExpressionParser",
        "make",
        "each UpdateItem tokenizes and parses its expression twice (moto_speedups.py)",
        f"{_SPEEDUP_WRITES}::test_given_the_speedup_when_an_expression_is_sent_again_then_it_is_parsed_once_and_its_tree_kept",
    ),
    _moto(
        "moto.dynamodb.models",
        "copy",
        "TransactWriteItems deep-copies each table it names, a cost growing with the table (moto_speedups.py)",
        f"{_SPEEDUP_WRITES}::test_given_the_speedup_when_a_transaction_runs_on_a_large_table_then_only_its_keys_are_copied",
    ),
    *(
        _moto("moto.dynamodb.responses.DynamoHandler", name, why, proof)
        for name, why, proof in (
            *(
                (read, "moto serialises the live item after its backend: half an update seen", _DYNAMODB_READ)
                for read in _READS
            ),
            (
                "update_item",
                "its ReturnValues answer serialises the live item, later writes included",
                _DYNAMODB_ANSWER,
            ),
        )
    ),
    # -- per-request costs paid once (moto_patches.py) ---------------------------------------------
    _moto(
        "moto.backends",
        "list_of_moto_modules",
        "the dispatcher lists moto's package directory on every request",
        f"{_MOTO_PATCHES}::test_given_the_cache_when_the_dispatcher_routes_a_host_then_no_directory_is_read",
    ),
    _moto("moto.stepfunctions.parser.asl.utils.json_path", "parse", "a JSONPath parser built per path", _STEP_PATHS),
    _moto("moto.stepfunctions.parser.asl.component.common.path.result_path", "parse", "ditto, ResultPath", _STEP_PATHS),
    _moto(
        "moto.core.base_backend.BackendDict",
        "_create_account_specific_backend",
        "each backend lookup takes moto's global lock and compares its BackendDict with every other in use",
        f"{_MOTO_PATCHES}::test_given_the_cache_when_an_account_s_backend_is_looked_up_again_then_nothing_is_compared",
    ),
    _moto(
        "moto.core.responses",
        "camelcase_to_underscores",
        "the dispatcher converts each request's action name a character at a time",
        f"{_MOTO_PATCHES}::test_given_the_cache_when_an_action_is_dispatched_again_then_its_name_is_converted_once",
    ),
    _moto(
        "moto.core.responses",
        "method_names_from_class",
        "moto's dispatcher lists the response class's methods (inspect.getmembers) on every request",
        f"{_MOTO_PATCHES}::test_given_the_cache_when_a_service_answers_twice_then_its_methods_are_listed_once",
    ),
    PatchTarget(
        "antlr4-python3-runtime",
        "antlr4.RuleContext.RuleContext",
        "getText",
        "each execution's program asks every level of the kept tree for its text, concatenated again each time",
        (f"{_MOTO_PATCHES}::test_given_a_kept_tree_when_a_program_is_built_then_no_node_concatenates_its_text",),
    ),
    PatchTarget(
        "jsonpath-ng",
        "jsonpath_ng.ext",
        "parse",
        "moto's EventBridge builds a JSONPath parser (a yacc table) for every path of every delivery",
        (f"{_MOTO_PATCHES}::test_given_the_cache_when_eventbridge_delivers_twice_then_its_paths_parse_once",),
    ),
    _moto(
        "moto.core.serialize.BaseJSONSerializer",
        "_serialize_type_structure",
        "each DynamoDB attribute value walks the ten union members through alias providers (moto_speedups.py)",
        f"{_SPEEDUPS}::test_given_the_speedup_when_an_item_grows_then_the_serializer_s_lookups_do_not",
    ),
    _moto(
        "moto.dynamodb.parsing.validators",
        "deepcopy",
        "each UpdateItem deep-copies its expression's node tree through the pickle protocol (moto_speedups.py)",
        f"{_SPEEDUPS}::test_given_the_speedup_when_an_update_is_validated_then_its_tree_is_copied_without_pickling",
    ),
    _moto(
        "moto.sqs.models.SQSBackend",
        "is_message_valid_based_on_retention_period",
        "each message looked at computes every queue attribute, counting every message: a receive costs n squared",
        f"{_SPEEDUPS}::test_given_the_speedup_when_a_long_queue_is_received_from_then_no_queue_attributes_are_computed",
    ),
    _moto(
        "moto.stepfunctions.parser.asl.parse.asl_parser.AmazonStateLanguageParser",
        "parse",
        "antlr parses the definition and the preprocessor builds its program on every execution",
        _STEP_PATHS,
        f"{_MOTO_PATCHES}::test_given_the_tree_cache_when_a_definition_runs_twice_then_antlr_parses_once_and_the_program_is_shared",
        f"{_MOTO_PATCHES}::test_given_a_shared_program_then_each_component_s_heap_key_is_drawn_before_any_execution",
    ),
    _moto(
        "moto.stepfunctions.parser.backend.execution.Execution",
        "__init__",
        "moto gives executions no logging session: Express executions are inspected from their log group (sfn_logs.py)",
        "tests/integration/test_pipeline.py::test_given_an_express_execution_when_the_runbook_reads_its_logs_then_it_shows_the_orders_steps",
    ),
    _moto(
        "moto.cloudwatch.models.Alarm",
        "update_state",
        "moto runs no alarm actions: a transition into ALARM publishes CloudWatch's notification (alarm_actions.py)",
        "tests/integration/test_localstage_alarms.py::test_given_an_alert_endpoint_when_an_alarm_goes_into_alarm_then_the_endpoint_receives_cloudwatchs_notification",
        "tests/integration/test_localstage_alarms.py::test_given_an_alarm_already_firing_then_only_a_new_transition_notifies_again",
    ),
    _moto(
        "moto.stepfunctions.parser.backend.execution.BaseExecutionWorkerCommunication",
        "terminated",
        "moto emits no Step Functions status change events; an ending execution puts its own (sfn_events.py)",
        f"{_EVENTS}::test_given_a_task_whose_handler_raises_then_retry_and_catch_see_its_error_and_a_status_event_follows",
        "tests/unit/test_localstage_sfn_status_events.py::test_given_a_standard_and_an_express_machine_when_each_runs_then_only_the_standard_one_puts_an_event",
    ),
    # -- Lambda: the emulator runs the functions (moto_lambda.py, runtime/deployed.py) ---------------
    _moto(
        "moto.awslambda.models.LambdaFunction",
        "invoke",
        "moto runs code only in Docker",
        "tests/integration/test_localstage_lambdas.py::test_given_a_function_when_invoked_through_the_lambda_api_then_the_real_handler_answers",
    ),
    _moto(
        "moto.sqs.models.Queue",
        "lambda_event_source_mappings",
        "moto invokes a mapped function inside SendMessage; the stage's pollers deliver instead",
        f"{_PATCHES}::test_given_a_mapped_queue_detached_when_a_message_is_sent_then_moto_does_not_invoke_and_undo_reattaches",
        instance=True,
    ),
    *(
        _moto(
            "moto.awslambda.models.LambdaBackend",
            name,
            "a mapping change reaches the deployed functions' pollers at once",
            f"{_RUNTIME}::test_given_an_sqs_mapping_created_through_the_api_then_it_delivers_and_item_failures_apply_after_an_update",
        )
        for name in ("create_event_source_mapping", "update_event_source_mapping", "delete_event_source_mapping")
    ),
    # -- event delivery with AWS's event shapes (sns_delivery.py, eventbridge.py) ------------------
    _moto(
        "moto.sns.models.Subscription",
        "publish",
        "moto invokes a lambda subscription synchronously with a canned event",
        f"{_EVENTS}::test_given_a_subscription_when_a_message_is_published_then_the_handler_gets_the_sns_event",
    ),
    _moto(
        "moto.events.models.Rule",
        "send_to_targets",
        "moto raises NotImplementedError for a Lambda target",
        f"{_EVENTS}::test_given_a_matching_event_on_the_default_bus_then_the_handler_gets_the_envelope",
    ),
    # -- X-Ray: services' segments and headers (xray_moto.py) --------------------------------------
    _moto(
        "moto.xray.models.SegmentCollection",
        "summary",
        "GetTraceSummaries with a filter expression is a 500 in moto",
        f"{_XRAY}::test_given_traces_annotated_with_orders_when_filtered_by_one_then_only_its_trace_with_annotations",
    ),
    _moto(
        "moto.xray.models.SegmentCollection",
        "put_segment",
        "moto keeps every trace for ever",
        f"{_XRAY}::test_given_more_traces_than_the_bound_when_stored_then_the_oldest_are_forgotten",
    ),
    _moto("moto.sqs.models.SQSBackend", "send_message", "AWSTraceHeader from the sender's header", _TRACED_REQUEST),
    *(
        _moto(
            owner, name, "the request's trace header, for the deliveries moto makes while serving it", _TRACED_REQUEST
        )
        for owner, name in (
            ("moto.sqs.responses.SQSResponse", "send_message"),
            ("moto.sqs.responses.SQSResponse", "send_message_batch"),
            ("moto.sns.responses.SNSResponse", "publish"),
            ("moto.sns.responses.SNSResponse", "publish_batch"),
            ("moto.events.responses.EventsHandler", "put_events"),
        )
    ),
    _moto(
        "moto.stepfunctions.responses.StepFunctionResponse",
        "start_execution",
        "an execution continues its StartExecution's trace",
        _ORDER_HANDOFFS,
    ),
    _moto(
        f"{_STATE_TASK}.lambda_eval_utils",
        "execute_lambda_function_integration",
        "a Lambda task runs in its execution's trace",
        _ORDER_HANDOFFS,
        f"{_SFN_TASKS}::test_given_a_traced_execution_when_its_lambda_task_runs_then_the_invoke_carries_its_trace",
    ),
    _moto(
        f"{_STATE_TASK}.lambda_eval_utils",
        "boto_client_for",
        "one client per service, not one per task; the invoke carries the header",
        f"{_SFN_TASKS}::test_given_a_traced_execution_when_its_lambda_task_runs_then_the_invoke_carries_its_trace",
        f"{_SFN_TASKS}::test_given_many_lambda_tasks_when_they_run_then_moto_builds_one_client_for_them",
    ),
    # -- IAM: the workflow acts as its execution role (iam/stage.py) -------------------------------
    *(
        _moto(
            f"{_STATE_TASK}.{owner}",
            "_eval_execution",
            "moto's interpreter signs every task's call with fixed keys",
            proof,
        )
        for owner, proof in (
            (
                "state_task_lambda.StateTaskLambda",
                f"{_IAM}::test_given_every_path_when_run_then_every_grant_of_every_function_is_used",
            ),
            (
                "service.state_task_service.StateTaskService",
                f"{_SFN_TASKS}::test_given_a_service_integration_task_when_it_runs_then_its_call_is_made_as_the_execution_role",
            ),
        )
    ),
    # -- the embedded AWS's WSGI app and its call log (server.py, call_log.py) ---------------------
    _moto(
        "werkzeug.serving.BaseWSGIServer",
        "app",
        "moto's server keeps its werkzeug server in the private _server: the stage's middlewares go in front",
        "tests/integration/test_localstage_inprocess.py::test_a_middleware_put_in_front_later_sees_in_process_calls",
        instance=True,
    ),
    _moto(
        "moto.moto_server.werkzeug_app.DomainDispatcherApplication",
        "__call__",
        "Flask's request and app contexts, URL adapter, session and signals cost about 30 % of moto's own "
        "work for a GetItem (moto_dispatch.py)",
        f"{_DISPATCH}::test_given_the_direct_path_when_the_sdk_calls_then_flask_is_not_entered",
        f"{_DISPATCH}::test_given_the_direct_path_then_each_answer_is_flask_s_status_headers_and_body",
    ),
    _moto(
        "moto.moto_server.werkzeug_app.DomainDispatcherApplication",
        "get_backend_for_host",
        "each request's host is matched against about 200 backends' URL patterns in turn (moto_dispatch.py)",
        f"{_DISPATCH}::test_given_the_direct_path_when_a_host_is_asked_again_then_its_backend_is_not_searched_again",
    ),
    _moto(
        "moto.moto_server.threaded_moto_server",
        "DomainDispatcherApplication",
        "LOCAL_AWS_CALL_LOG: every call the embedded AWS serves, logged",
        f"{_PATCHES}::test_given_the_call_log_when_the_embedded_aws_serves_calls_then_each_is_a_line",
    ),
    # -- CloudFormation and API Gateway's control plane (patch_inventory_deploy.py) -----------------
    *(_moto(*entry) for entry in DEPLOY_ENTRIES),
    # -- botocore ---------------------------------------------------------------------------------
    PatchTarget(
        "botocore",
        "botocore.endpoint.EndpointCreator",
        "create_endpoint",
        "the stage's own clients reach the embedded AWS in process (inprocess.py)",
        (
            "tests/integration/test_localstage_inprocess.py::test_a_client_created_after_start_goes_in_process_and_others_do_not",
        ),
    ),
    PatchTarget(
        "botocore",
        "botocore.signers.RequestSigner",
        "get_auth_instance",
        "each invocation signs as its function's role (iam/principals.py)",
        (f"{_IAM}::test_given_the_authorizers_read_revoked_then_authorized_requests_fail_and_public_ones_work",),
    ),
    # -- Chalice ----------------------------------------------------------------------------------
    PatchTarget(
        "chalice",
        "chalice.app.Chalice",
        "__class__",
        "a thread-local current_request, as create_local_server gives (http_gateway.py)",
        (
            "tests/integration/test_localstage_http.py::test_given_the_emulated_server_then_each_thread_has_its_own_request_until_undone",
        ),
        instance=True,
    ),
    # -- the X-Ray SDK, in process (xray.py) -------------------------------------------------------
    *(
        PatchTarget("aws-xray-sdk", _XRAY_RECORDER, name, why, (_SDK_CONTEXT,), instance=True)
        for name, why in (
            ("context", "the invocation's trace header per thread, not per process"),
            ("emitter", "subsegments to the stage's daemon"),
            ("streaming_threshold", "each subsegment sent when it closes, as in Lambda"),
        )
    ),
    PatchTarget(
        "aws-xray-sdk",
        _XRAY_RECORDER,
        "record_subsegment",
        "no SDK work for calls outside an invocation",
        (
            f"{_XRAY_UNIT}::test_given_the_sdk_context_when_a_call_is_made_outside_an_invocation_then_the_sdk_is_bypassed",
        ),
        instance=True,
    ),
)

using ControlPlane.Scheduler.Audit;
using ControlPlane.V1;

namespace ControlPlane.Scheduler.Services;

/// <summary>AuditService: the namespace's audit trail, newest first, a page at a time (admin only, by the authorization table).</summary>
internal sealed class AuditServiceImpl(SchedulerRuntime runtime) : AuditService.AuditServiceBase
{
    /// <summary>Most entries per page.</summary>
    public const int MaxLimit = 1000;

    private const int DefaultLimit = 100;
    private const int MaxActionLength = 64;
    private const int MaxCursorLength = 64;


    public override async Task<ListAuditResponse> ListAudit(ListAuditRequest request, Grpc.Core.ServerCallContext context)
    {
        if (request.Limit is < 0 or > MaxLimit)
        {
            throw RpcErrors.InvalidArgument("limit", $"limit is {request.Limit}; use 0 for the default of {DefaultLimit}, or 1 to {MaxLimit}");
        }

        if (request.Action.Length > MaxActionLength)
        {
            throw RpcErrors.InvalidArgument("action", $"action is {request.Action.Length} characters; actions are at most {MaxActionLength} (e.g. \"token.create\")");
        }

        if (request.Cursor.Length > MaxCursorLength)
        {
            throw RpcErrors.InvalidArgument("cursor", "cursor is not one this scheduler issued; pass next_cursor of the previous page, or none");
        }

        var query = new AuditQuery(request.Limit == 0 ? DefaultLimit : request.Limit, request.Cursor.Length == 0 ? null : request.Cursor, request.Action.Length == 0 ? null : request.Action);
        AuditPage page;
        try
        {
            var ns = await runtime.ForCallAsync(context).ConfigureAwait(false);
            page = await ns.Audit.Store.ListAsync(query, context.CancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException ex) when (ex.ParamName == "query")
        {
            throw RpcErrors.InvalidArgument("cursor", "cursor is not one this scheduler issued; pass next_cursor of the previous page, or none");
        }

        var response = new ListAuditResponse { NextCursor = page.NextCursor ?? "" };
        response.Entries.AddRange(page.Entries.Select(e => e.ToProto()));
        return response;
    }
}

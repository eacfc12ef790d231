import { Controller, MessageEvent, Req, Sse, UseGuards } from '@nestjs/common';
import { Observable, filter, map } from 'rxjs';
import { JwtAuthGuard } from '../../../../auth/jwt-auth.guard';
import type { AuthenticatedRequest } from '../../../../auth/jwt-auth.guard';
import { BenchNotifyService } from '../../services/bench-notify.service';

@Controller('events')
@UseGuards(JwtAuthGuard)
export class BenchSseController {
  constructor(private readonly notifyService: BenchNotifyService) {}

  @Sse()
  stream(@Req() req: AuthenticatedRequest): Observable<MessageEvent> {
    const userId = req.user.id;

    return this.notifyService.events$.pipe(
      // Filtrer par utilisateur (multiplexage)
      filter((event) => event.targetUserId === userId),
      // Formater en SSE MessageEvent
      map((event) => ({
        id: String(event.id),
        type: event.type,
        data: JSON.stringify(event.payload),
      })),
    );
  }
}

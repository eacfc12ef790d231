import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';
import { verify } from 'jsonwebtoken';

export interface AuthenticatedRequest extends Request {
  user: { id: string };
}

@Injectable()
export class JwtAuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const [scheme, token] = req.headers.authorization?.split(' ') ?? [];
    if (scheme !== 'Bearer' || !token) {
      throw new UnauthorizedException();
    }
    try {
      const claims = verify(token, process.env.JWT_SECRET!, { algorithms: ['HS256'] });
      if (typeof claims === 'string' || typeof claims.sub !== 'string') {
        throw new UnauthorizedException();
      }
      req.user = { id: claims.sub };
      return true;
    } catch {
      throw new UnauthorizedException();
    }
  }
}
